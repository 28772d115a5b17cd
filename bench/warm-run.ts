/**
 * What a run costs when nothing has to be loaded: the same playbook run again and again inside one node
 * process, through the built checkout's own composition root (dist/app/run-playbook.js, what `pgplay run`
 * calls), so every module is loaded and compiled after the first run. The floor under what a resident
 * pgplay (an agent that keeps its code and warm state between runs) could reach, against which the CLI's
 * start-up and loading are measured (bench/README.md, session 35). A script a human runs, not a test:
 *
 *   node --single-threaded-gc dist/bench/bench/warm-run.js --pgplay . --playbook standby-from-backup \
 *     -i /var/lib/pgplay-bench-lab/inventory.yml -p host=db2 --state-dir /var/lib/pgplay-bench-lab-state --runs 8
 *
 * Prints each run (exit code, changes, wall and node's CPU) and the medians of the runs after the first
 * three (the JIT's warm-up): call → run-start, run-start → run-end, run-end → returned.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { median } from './procedures/stats.js';

const { values: opts } = parseArgs({
  options: {
    pgplay: { type: 'string', default: '.' },
    playbook: { type: 'string' },
    inventory: { type: 'string', short: 'i' },
    param: { type: 'string', short: 'p', multiple: true, default: [] },
    'state-dir': { type: 'string' },
    runs: { type: 'string', default: '8' },
  },
});

const RUNS = Number(opts.runs);
if (!opts.playbook || !opts.inventory || !opts['state-dir'] || !Number.isInteger(RUNS) || RUNS < 4) {
  console.error('warm-run: --playbook, -i/--inventory and --state-dir are required; --runs takes an integer of at least 4');
  process.exit(2);
}

/** What this script uses of the checkout's run-playbook.js (its RunRequest and outcome), typed here so that the bench compiles without src/. */
interface Event {
  type: string;
  time?: string;
  started?: string;
}
interface Outcome {
  exitCode: number;
  recap: Record<string, { changed: number }>;
  closed: Promise<void>;
}
type RunPlaybook = (request: Record<string, unknown>) => Promise<Outcome>;

const root = resolve(opts.pgplay!);
// A shipped playbook's name, as `pgplay run` takes it, or a file.
const shipped = join(root, 'playbooks', `${opts.playbook}.yml`);
const playbookFile = existsSync(shipped) ? shipped : resolve(opts.playbook!);
const params = Object.fromEntries(
  opts.param!.map((pair) => {
    const at = pair.indexOf('=');
    if (at < 1) {
      console.error(`warm-run: -p takes name=value, not ${pair}`);
      process.exit(2);
    }
    return [pair.slice(0, at), pair.slice(at + 1)];
  }),
);
const entry = join(root, 'dist', 'app', 'run-playbook.js');
if (!existsSync(entry)) {
  console.error(`warm-run: ${entry} is missing: build that checkout first (npm run build)`);
  process.exit(2);
}
if (!existsSync(playbookFile)) {
  console.error(`warm-run: no playbook ${opts.playbook} (neither ${shipped} nor a file)`);
  process.exit(2);
}
const { runPlaybook } = (await import(pathToFileURL(entry).href)) as { runPlaybook: RunPlaybook };

const rows: number[][] = [];
for (let i = 0; i < RUNS; i++) {
  const called = Date.now();
  const cpu = process.cpuUsage();
  const at: Record<string, number> = {};
  const outcome = await runPlaybook({
    playbookFile,
    inventoryFile: resolve(opts.inventory!),
    params,
    check: false,
    diff: false,
    yes: true,
    stateDir: resolve(opts['state-dir']!),
    warn: () => undefined,
    onEvent: (e: Event) => {
      const time = Date.parse(e.time ?? e.started ?? '');
      if (!Number.isNaN(time) && !(e.type in at)) at[e.type] = time - called;
    },
  });
  await outcome.closed;
  const returned = Date.now() - called;
  const used = process.cpuUsage(cpu);
  const changed = Object.values(outcome.recap).reduce((sum, host) => sum + host.changed, 0);
  const row = [at['run-start'] ?? NaN, (at['run-end'] ?? NaN) - (at['run-start'] ?? NaN), returned - (at['run-end'] ?? NaN), returned, (used.user + used.system) / 1000];
  console.log(`run ${i + 1}: exit ${outcome.exitCode}, ${changed} changed, ${returned} ms, node CPU ${row[4]!.toFixed(0)} ms`);
  if (i >= 3) rows.push(row);
}

const column = (k: number) => median(rows.map((r) => r[k]!)).toFixed(0);
console.log(
  `median of runs 4-${RUNS}: call → run-start ${column(0)} ms, run-start → run-end ${column(1)} ms, run-end → returned ${column(2)} ms; ` +
    `whole ${column(3)} ms, node CPU ${column(4)} ms`,
);
