import { resolve } from 'node:path';
import { EXIT } from '../../core/errors.js';
import { defaultStateDir } from '../../core/paths.js';
import { listRuns, type JournalRun } from '../../journal/reader.js';
import { runsDir } from '../../journal/paths.js';
import { parse, parsePositiveInt, usage } from '../args.js';

const OPTIONS = {
  limit: { type: 'string', short: 'n' },
  'state-dir': { type: 'string' },
  output: { type: 'string' },
} as const;

const DEFAULT_LIMIT = 20;

/** `pgplay history`: past runs from the journal, newest first. */
export async function historyCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('history', argv, OPTIONS);
  if (positionals.length) throw usage(`history takes no arguments, got "${positionals[0]}"`, 'history');
  const output = values.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, 'history');
  const limit = parsePositiveInt(values.limit, '--limit', 'history') ?? DEFAULT_LIMIT;
  const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
  const { runs, unreadable } = listRuns(stateDir);
  const shown = runs.slice(0, limit);

  if (output === 'json') {
    write(JSON.stringify(shown.map(summary), null, 2) + '\n');
  } else if (shown.length === 0) {
    write(`no runs in the journal at ${runsDir(stateDir)}\n`);
  } else {
    write(table(shown));
    if (runs.length > shown.length) write(`(${runs.length - shown.length} older run${runs.length - shown.length === 1 ? '' : 's'} not shown; --limit N)\n`);
  }
  for (const u of unreadable) process.stderr.write(`warning: ${u.message}\n`);
  return EXIT.OK;
}

function summary(run: JournalRun) {
  const h = run.header;
  return {
    id: h.runId,
    started: h.started,
    ended: run.end?.time ?? null,
    playbook: h.playbook,
    inventory: h.inventory,
    cluster: h.cluster,
    status: run.status,
    interruptedBy: run.end?.interruptedBy ?? null,
    exitCode: run.end?.exitCode ?? null,
    check: h.check,
    resumeOf: h.resumeOf,
    git: h.git,
    ...run.counts,
    error: run.end?.error ?? null,
    journal: run.file,
  };
}

function table(runs: JournalRun[]): string {
  const rows = runs.map((r) => {
    const notes = [r.header.check ? 'check' : '', r.header.resumeOf ? `resumes ${r.header.resumeOf}` : ''].filter(Boolean);
    return [
      r.header.runId,
      r.header.started.replace(/\.\d+Z$/, 'Z'),
      r.status,
      String(r.counts.changed),
      String(r.counts.failed),
      r.header.playbook + (notes.length ? ` (${notes.join(', ')})` : ''),
    ];
  });
  const head = ['RUN', 'STARTED', 'STATUS', 'CHANGED', 'FAILED', 'PLAYBOOK'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([3, 4]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ') + '\n';
  return line(head) + rows.map(line).join('');
}
