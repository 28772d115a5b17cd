import { defaultStateDir } from '../../core/paths.js';
import { processRedactor } from '../../core/redact.js';
import { labDown, labStatus, labUp, type LabStatus } from '../../lab/index.js';
import { BACKUP_TOOL_NAMES, LAB_BACKUP_TOOLS, type LabBackupTool } from '../../lab/options.js';
import { createRenderer, type OutputFormat } from '../../report/index.js';
import { parse, parsePositiveInt, usage } from '../args.js';

const OPTIONS = {
  dir: { type: 'string' },
  'pg-version': { type: 'string' },
  'base-port': { type: 'string' },
  bindir: { type: 'string' },
  'backup-tool': { type: 'string' },
  output: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

const ACTIONS = ['up', 'down', 'status'] as const;

/** `pgplay lab up|down|status`: the exit code of the lab's playbook run for up, 0 for down and status. */
export async function labCommand(argv: string[], write: (text: string) => void, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse('lab', argv, OPTIONS);
  const action = positionals[0];
  if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(action ?? '')) {
    throw usage(`lab expects one of ${ACTIONS.join(', ')}${action ? `, got "${positionals.join(' ')}"` : ''}`, 'lab');
  }
  const output = (values.output ?? 'human') as OutputFormat;
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, 'lab');
  if (action !== 'up') {
    for (const flag of ['pg-version', 'base-port', 'bindir', 'backup-tool'] as const) {
      if (values[flag] !== undefined) throw usage(`--${flag} applies to lab up only`, 'lab');
    }
  }
  const redactor = processRedactor();
  const backupTool = values['backup-tool'];
  if (backupTool !== undefined && !(LAB_BACKUP_TOOLS as readonly string[]).includes(backupTool)) {
    throw usage(`--backup-tool must be ${LAB_BACKUP_TOOLS.join(', ')}, got "${backupTool}"`, 'lab');
  }

  if (action === 'up') {
    const renderer = await createRenderer(output, { diff: false, verbose: values.verbose });
    const result = await labUp(
      {
        dir: values.dir,
        pgVersion: parsePositiveInt(values['pg-version'], '--pg-version', 'lab'),
        basePort: parsePositiveInt(values['base-port'], '--base-port', 'lab'),
        bindir: values.bindir,
        backupTool: backupTool as LabBackupTool | undefined,
      },
      {
        stateDir: defaultStateDir(),
        signal,
        warn: (message) => void process.stderr.write(redactor.redact(`pgplay: ${message}\n`)),
        onEvent: (e) => renderer.onEvent(e),
      },
    );
    await renderer.finish();
    if (output === 'human') {
      if (result.exitCode !== 0) {
        write(`\nthe lab in ${result.options.dir} is not complete (exit ${result.exitCode}); fix the cause and run pgplay lab up again\n`);
      } else {
        write(`\n${formatStatus(await labStatus(result.options.dir))}`);
        write(
          [
            '',
            'Next:',
            '  pgplay run playbooks/nightly-backup.yml',
            '  pgplay run playbooks/standby-from-backup.yml',
            '  pgplay run playbooks/pitr-drill.yml -p target=latest',
            '  pgplay lab down',
            '',
          ].join('\n'),
        );
      }
    }
    return result.exitCode;
  }

  if (action === 'down') {
    const result = await labDown(values.dir);
    if (output === 'json') write(JSON.stringify(result) + '\n');
    else if (!result.existed) write(`no lab in ${result.dir}: nothing to do\n`);
    else write(`lab in ${result.dir} removed${result.stopped.length ? ` (stopped ${result.stopped.join(', ')})` : ''}\n`);
    return 0;
  }

  const status = await labStatus(values.dir);
  write(output === 'json' ? JSON.stringify(status) + '\n' : formatStatus(status));
  return 0;
}

export function formatStatus(status: LabStatus): string {
  if (!status.up) return `no lab in ${status.dir} (pgplay lab up builds one)\n`;
  const o = status.options!;
  const lines = [
    `lab ${status.dir}: PostgreSQL ${o.pgVersion}, backups with ${BACKUP_TOOL_NAMES[o.backupTool]}`,
    `inventory ${status.inventory}${status.pointer ? ' (used by pgplay run when no -i is given)' : ''}`,
  ];
  const rows = status.hosts.map((h) => [h.name, h.role, h.port !== undefined ? `${h.address}:${h.port}` : h.address, h.state]);
  const header = ['HOST', 'ROLE', 'ADDRESS', 'STATE'];
  const widths = header.map((t, i) => Math.max(t.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) lines.push('  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return lines.join('\n') + '\n';
}
