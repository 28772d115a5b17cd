import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseDuration } from '../../core/duration.js';
import { PgplayError } from '../../core/errors.js';
import { defaultStateDir } from '../../core/paths.js';
import { processRedactor } from '../../core/redact.js';
import type { RunEvent } from '../../engine/events.js';
import type { TopologyChanged } from '../../model/topology.js';
import { runPlaybook } from '../../app/run-playbook.js';
import { createRenderer, type OutputFormat } from '../../report/index.js';
import { errorEvent } from '../../report/json.js';
import { parse, parseList, parseParamPairs, parsePositiveInt, usage } from '../args.js';
import { locateInventory } from '../locate.js';
import { assertRunExists, normaliseResume } from '../resume-arg.js';
import { choosePlaybook } from '../shipped.js';
import { assertWritableOutput } from '../writable.js';

const OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  param: { type: 'string', short: 'p', multiple: true },
  check: { type: 'boolean' },
  diff: { type: 'boolean' },
  limit: { type: 'string' },
  tags: { type: 'string' },
  from: { type: 'string' },
  resume: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  forks: { type: 'string' },
  output: { type: 'string' },
  report: { type: 'string' },
  metrics: { type: 'string' },
  'state-dir': { type: 'string' },
  force: { type: 'boolean' },
  timeout: { type: 'string' },
  grace: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  'export-shell': { type: 'string' },
} as const;

/**
 * With `--output json` every error is a JSON event on stdout too, not text on stderr: a machine reading
 * the events learns that the run never started, and why (file:line:col, expected, hint), from them.
 */
export async function runCommand(command: 'run' | 'plan', argv: string[], signal: AbortSignal): Promise<number> {
  try {
    return await runOrPlan(command, argv, signal);
  } catch (e) {
    if (!wantsJson(argv)) throw e;
    const event = processRedactor().redactValue(errorEvent(e));
    process.stdout.write(JSON.stringify(event) + '\n');
    if (process.env.PGPLAY_DEBUG === '1') process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    return event.exitCode;
  }
}

/** Whether the command line asks for JSON output, read before (and whether or not) it parses. */
function wantsJson(argv: string[]): boolean {
  return argv.some((a, i) => a === '--output=json' || (a === '--output' && argv[i + 1] === 'json'));
}

async function runOrPlan(command: 'run' | 'plan', argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(command, normaliseResume(argv, looksLikePlaybook), OPTIONS);
  if (positionals.length !== 1) throw usage(`${command} expects exactly one playbook file`, command);
  const output = (values.output ?? 'human') as OutputFormat;
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, command);
  const check = command === 'plan' || values.check === true;
  const diff = command === 'plan' || values.diff === true;
  const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
  if (values.resume !== undefined && values.resume !== 'last') assertRunExists(stateDir, values.resume);
  const chosen = choosePlaybook(positionals[0]!);
  const playbookFile = chosen.file;
  const inventoryFile = await locateInventory(playbookFile, values.inventory);
  if (values.report !== undefined) await assertWritableOutput(values.report, '--report');
  if (values.metrics !== undefined) await assertWritableOutput(values.metrics, '--metrics');
  const exportFile = values['export-shell'] !== undefined ? resolve(values['export-shell']) : undefined;
  if (exportFile !== undefined && command !== 'plan') throw usage('--export-shell only with plan: the script is what the plan would do', command);
  if (exportFile !== undefined) await assertWritableOutput(exportFile, '--export-shell');
  const renderer = await createRenderer(output, { diff, verbose: values.verbose });
  const events: RunEvent[] = [];
  const interactive = process.stdin.isTTY === true && process.env.CI !== 'true';

  const redactor = processRedactor();
  // Only plan --export-shell records the commands: the recorder is not loaded on the way to a run's first command.
  const shellExport = exportFile !== undefined ? new (await import('../../engine/shell-export.js')).ShellExportRecorder(redactor) : undefined;
  const stderr = (text: string) => void process.stderr.write(redactor.redact(text));
  let ended: Promise<void> | undefined; // --metrics: written from the journal when the run ends
  const result = await runPlaybook({
    // run-end's duration counts from the process start: start-up is part of what a run costs. Node's
    // own uptime gives that start: `performance.timeOrigin` would load perf_hooks whole (~5 ms) before
    // the run's first command.
    startedAt: Date.now() - process.uptime() * 1000,
    playbookFile,
    inventoryFile,
    params: parseParamPairs(values.param, command),
    check,
    diff,
    forks: parsePositiveInt(values.forks, '--forks', command),
    yes: values.yes,
    limit: parseList(values.limit),
    tags: parseList(values.tags),
    from: values.from,
    timeout: values.timeout,
    graceMs: values.grace === undefined ? undefined : parseDuration(values.grace, '--grace'),
    signal,
    stateDir,
    resume: values.resume,
    force: values.force,
    redactor,
    warn: (message) => stderr(`pgplay: ${message}\n`),
    onEvent: (e) => {
      // Say when the playbook came with pgplay rather than from where the user is.
      if (e.type === 'run-start' && chosen.shipped) e = { ...e, shipped: true };
      events.push(e);
      renderer.onEvent(e);
      // The reports and metrics modules load when the run has ended, not on the way to its first command.
      if (e.type === 'run-end' && values.metrics !== undefined && !check) {
        const { runId } = e;
        ended = import('../../metrics/run-metrics.js').then(({ writeRunMetrics }) => writeRunMetrics(resolve(values.metrics!), stateDir, runId, (m) => stderr(`pgplay: ${m}\n`)));
      }
    },
    ask: interactive ? (question) => askYesNo(redactor.redact(question)) : undefined,
    shellExport,
    // The reports and the evidence seal are written while the run's connections and helpers close.
    returnWhileClosing: true,
  });
  try {
    await renderer.finish();
    if (shellExport && exportFile) {
      if (result.exitCode !== 0) {
        stderr(`pgplay: the plan did not succeed (exit ${result.exitCode}): no shell export written\n`);
        return result.exitCode;
      }
      const script = shellExport.render({ playbook: playbookFile, file: exportFile });
      await writeFile(exportFile, script, { mode: 0o600 });
      stderr(`pgplay: wrote the plan as a shell script to ${exportFile}: review it, then run its parts in order (sh ${exportFile} 1, ...)\n`);
    }
    await ended;
    // The report the playbook declares: a drill report (it takes --report), or after a promotion the
    // topology-changed event, which the lab follows (it rewrites its own inventory), and what the
    // inventory needs.
    const procedures = await (await import('../../report/run-reports.js')).procedureReports({
      stateDir,
      runId: result.runId,
      check,
      reportFile: values.report,
      topologyListeners: [async (change) => (await import('../../lab/follow.js')).labFollowsTopology(change)],
    });
    if (values.report && !procedures.drill && !procedures.rejoin && !procedures.restore) await writeReport(values.report, redactor.redactValue(events), procedures.topology && redactor.redactValue(procedures.topology));
    // Last, once every record of the run is written: its manifest, linked to the one sealed before it.
    await (await import('../../evidence/manifest.js')).sealEvidence(stateDir, result.runId, (m) => stderr(`pgplay: ${m}\n`));
    if (output === 'human') for (const notice of procedures.notices) process.stdout.write(redactor.redact(notice));
    else if (procedures.topology) process.stdout.write(JSON.stringify(redactor.redactValue(procedures.topology)) + '\n');
    return result.exitCode;
  } finally {
    // Every process the run started is gone before pgplay is.
    await result.closed;
  }
}

/** A word that may be the playbook rather than a run id: a YAML file name, an existing file, a shipped playbook. */
function looksLikePlaybook(word: string): boolean {
  if (/\.ya?ml$/i.test(word) || existsSync(word)) return true;
  try {
    return choosePlaybook(word).shipped;
  } catch {
    return false;
  }
}

/** Asked only at a terminal: readline is imported then, not by every run. */
async function askYesNo(question: string): Promise<boolean> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/** The run's events, and after a promotion the topology change (with how the old primary was fenced). */
async function writeReport(file: string, events: RunEvent[], topology?: TopologyChanged): Promise<void> {
  try {
    await writeFile(file, JSON.stringify({ events, ...(topology ? { topology } : {}) }, null, 2) + '\n', { mode: 0o600 });
  } catch (e) {
    throw new PgplayError({ code: 'USAGE', message: `cannot write report ${file}: ${(e as Error).message}` });
  }
}
