/**
 * The procedure benchmark (bench/procedures/README.md): pgplay's shipped procedures against the raw
 * command sequences that do the same work (bench/procedures/raw.sh), on a lab of its own, interleaved in
 * pairs. A script a human runs (`npm run bench:procedures`), never part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pgplayBin } from '../pgplay-bin.js';
import { baselineTable, table, summarize, type Pair, type ProcedureResult } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    pairs: { type: 'string', default: '10' },
    scale: { type: 'string', default: '30' },
    dir: { type: 'string', default: '/var/lib/pgplay-bench-lab' },
    'base-port': { type: 'string', default: '21500' },
    results: { type: 'string', default: 'bench/results' },
    // The pgplay checkout to measure (its dist/ must be built); raw.sh is always this checkout's.
    pgplay: { type: 'string', default: '.' },
    // Another built checkout measured in the same rounds (raw, baseline, pgplay in a rotating order), so
    // that before and after are compared at the same load on a shared machine.
    baseline: { type: 'string', default: '' },
    only: { type: 'string', default: '' },
    keep: { type: 'boolean', default: false },
    label: { type: 'string', default: '' },
  },
});

const PAIRS = Number(opts.pairs);
const SCALE = Number(opts.scale);
const BASE_PORT = Number(opts['base-port']);
if (!Number.isInteger(PAIRS) || PAIRS < 1 || !Number.isInteger(SCALE) || SCALE < 1 || !Number.isInteger(BASE_PORT)) {
  console.error('bench:procedures: --pairs, --scale and --base-port take positive integers');
  process.exit(2);
}
const LAB = resolve(opts.dir!);
const STATE = `${LAB}-state`;
/**
 * The baseline's own state directory. Each build trusts only its own entries in the parse cache
 * (load/parse-cache.ts: the build's stamp), so two builds sharing one directory replace each other's
 * inventory entry on every run and both parse and validate the YAML every time (~40 ms here), which a
 * user running one build does not.
 */
const BASELINE_STATE = `${LAB}-state-baseline`;
const PGPLAY = resolve(opts.pgplay!);
const BASELINE = opts.baseline ? resolve(opts.baseline) : undefined;
const RAW = resolve('bench/procedures/raw.sh');
const BIN = '/usr/lib/postgresql/15/bin';
const PORTS = { db1: BASE_PORT, db2: BASE_PORT + 1, drill1: BASE_PORT + 2 };
const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const OUT = resolve(opts.results!, `procedures-${stamp}`);
mkdirSync(OUT, { recursive: true });
const LOG = join(OUT, 'commands.log');

const env: NodeJS.ProcessEnv = {
  ...process.env,
  PGPLAY_STATE_DIR: STATE,
  LAB,
  BINDIR: BIN,
  PORT_DB1: String(PORTS.db1),
  PORT_DB2: String(PORTS.db2),
  PORT_DRILL: String(PORTS.drill1),
  CI: 'true',
};

/** Runs a command, its output to the log; returns the wall time in seconds. Throws on a non-zero exit. */
function exec(argv: string[], extraEnv: NodeJS.ProcessEnv = {}): { seconds: number; stdout: string } {
  appendFileSync(LOG, `\n$ ${argv.join(' ')}\n`);
  const start = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { env: { ...env, ...extraEnv }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  appendFileSync(LOG, r.stdout + r.stderr + `[exit ${r.status} in ${seconds.toFixed(3)} s]\n`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}; see ${LOG}:\n${(r.stderr || r.stdout).slice(-2000)}`);
  return { seconds, stdout: r.stdout };
}
const sh = (script: string): string => exec(['bash', '-c', script]).stdout.trim();
const asPg = (script: string): string => exec(['runuser', '-u', 'postgres', '--', 'bash', '-c', script]).stdout.trim();
const psql = (host: 'db1' | 'db2' | 'drill1', db: string, query: string): string =>
  exec(['runuser', '-u', 'postgres', '--', `${BIN}/psql`, '-X', '-A', '-t', '-q', '-w', '-v', 'ON_ERROR_STOP=1', '-h', `${LAB}/${host}/run`, '-p', String(PORTS[host]), '-d', db, '-c', query]).stdout.trim();

const pgplayCmd = (...args: string[]): string[] => [...pgplayBin(PGPLAY), ...args];
const runPlaybook = (playbook: string, ...params: string[]): string[] =>
  pgplayCmd('run', playbook, '-i', join(LAB, 'inventory.yml'), '--yes', ...params.flatMap((p) => ['-p', p]));
/** The same command with the baseline checkout's pgplay. */
const onBaseline = (argv: string[]): string[] => (BASELINE ? [...pgplayBin(BASELINE), ...argv.slice(pgplayBin(PGPLAY).length)] : argv);
const rawCmd = (procedure: string): string[] => ['bash', RAW, procedure];

// ---- What must hold after a run (both sides), so that a fast side is never one that skipped work ----
const postmasterPid = (host: 'db2'): string => sh(`head -n 1 ${LAB}/${host}/data/postmaster.pid 2>/dev/null || true`);
function assertStreaming(): void {
  const upstream = psql('db1', 'postgres', "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'db2' AND state = 'streaming'");
  const standby = psql('db2', 'postgres', 'SELECT pg_is_in_recovery()');
  if (upstream !== '1' || standby !== 't') throw new Error(`db2 is not a streaming standby (db1 sees ${upstream} streaming, db2 in recovery: ${standby})`);
}
const newestBackup = (): string =>
  asPg(`pgbackrest --config=${LAB}/bk1/pgbackrest.conf --stanza=lab --output=json info`)
    .match(/"label":"([^"]+)"/g)?.pop() ?? '';

interface Procedure {
  name: string;
  label: string;
  pgplay: () => string[];
  raw: () => string[];
  /** Untimed, before each side's run. */
  reset?: () => void;
  /** Untimed, before each pair (both sides then do the same work). */
  beforePair?: (pair: number) => void;
  /** Untimed, around each run: what must hold after it. */
  before?: () => unknown;
  verify: (before: unknown) => void;
  extraEnv?: () => NodeJS.ProcessEnv;
}

let restorePoint = '';
const expectedRows = String(SCALE * 100000);

const procedures: Procedure[] = [
  {
    name: 'nightly-backup',
    label: 'nightly-backup (full), whole, vs check, backup, expire, verify, pg_dumpall -g',
    pgplay: () => runPlaybook('nightly-backup', 'type=full'),
    raw: () => rawCmd('nightly-backup'),
    before: newestBackup,
    verify: (before) => {
      if (newestBackup() === before) throw new Error('no new backup in the repository');
    },
  },
  {
    name: 'standby-first-build',
    label: 'standby first build, until streaming',
    pgplay: () => runPlaybook('standby-from-backup', 'host=db2'),
    raw: () => rawCmd('standby-first-build'),
    // A host without PGDATA and no slot on the upstream: what a first build starts from.
    reset: () => {
      asPg(`[ ! -f ${LAB}/db2/data/postmaster.pid ] || ${BIN}/pg_ctl stop -D ${LAB}/db2/data -m fast -w >/dev/null; rm -rf -- ${LAB}/db2/data`);
      psql('db1', 'postgres', "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE slot_name = 'pgplay_db2'");
    },
    verify: assertStreaming,
  },
  {
    name: 'standby-rebuild',
    label: 'standby rebuild (delta), until streaming',
    pgplay: () => runPlaybook('standby-from-backup', 'host=db2', 'rebuild=true'),
    raw: () => rawCmd('standby-rebuild'),
    before: () => postmasterPid('db2'),
    verify: (before) => {
      assertStreaming();
      if (postmasterPid('db2') === before) throw new Error('db2 was not rebuilt (same postmaster)');
    },
  },
  {
    name: 'pitr-drill',
    label: 'PITR drill to a restore point, whole (restore, start, wait, proof, check, teardown)',
    pgplay: () =>
      runPlaybook('pitr-drill', 'target=name', `target_value=${restorePoint}`, 'checks_database=app',
        `checks=[{"sql": "SELECT count(*) FROM pgbench_accounts", "expect": "${expectedRows}"}]`),
    raw: () => rawCmd('pitr-drill'),
    // Each pair recovers to its own new restore point, made after the newest backup.
    beforePair: (pair) => {
      restorePoint = `bench-${stamp}-${pair}`;
      psql('db1', 'postgres', `SELECT pg_create_restore_point('${restorePoint}')`);
    },
    extraEnv: () => ({ RESTORE_POINT: restorePoint, DRILL_EXPECT: expectedRows }),
    verify: () => {
      if (existsSync(join(LAB, 'drill1/data'))) throw new Error('the drill copy was not removed');
    },
  },
  {
    name: 'standby-no-change',
    label: 'no-change standby-from-backup (raw: one psql)',
    pgplay: () => runPlaybook('standby-from-backup', 'host=db2'),
    raw: () => rawCmd('standby-no-change'),
    before: () => postmasterPid('db2'),
    verify: (before) => {
      assertStreaming();
      if (postmasterPid('db2') !== before) throw new Error('db2 was restarted by a run that had nothing to do');
    },
  },
];

function setUp(): void {
  exec(pgplayCmd('lab', 'up', '--dir', LAB, '--base-port', String(BASE_PORT)));
  const loaded = psql('db1', 'app', "SELECT to_regclass('pgbench_accounts') IS NOT NULL") === 't';
  const rows = loaded ? psql('db1', 'app', 'SELECT count(*) FROM pgbench_accounts') : '0';
  if (rows !== expectedRows) {
    console.log(`pgbench -i -s ${SCALE} on db1 ...`);
    exec(['runuser', '-u', 'postgres', '--', `${BIN}/pgbench`, '-i', '-q', '-s', String(SCALE), '-h', `${LAB}/db1/run`, '-p', String(PORTS.db1), 'app']);
  }
  // Untimed warm-up: archiving configured, a full backup, db2 built, so every timed run starts from a lab
  // a DBA would have; both sides then run once each untimed (caches, first-run effects).
  exec(runPlaybook('nightly-backup', 'type=full'));
  exec(runPlaybook('standby-from-backup', 'host=db2'));
}

function measure(p: Procedure): ProcedureResult {
  const result: ProcedureResult = { name: p.name, label: p.label, pairs: [] };
  const once = (side: 'raw' | 'pgplay' | 'baseline'): number => {
    p.reset?.();
    const before = p.before?.();
    const sideEnv = side === 'baseline' ? { PGPLAY_STATE_DIR: BASELINE_STATE } : {};
    const { seconds } = exec(side === 'raw' ? p.raw() : side === 'baseline' ? onBaseline(p.pgplay()) : p.pgplay(), { ...(p.extraEnv?.() ?? {}), ...sideEnv });
    p.verify(before);
    return seconds;
  };
  p.beforePair?.(0);
  once('pgplay');
  once('raw');
  if (BASELINE) {
    once('baseline');
    for (let i = 1; i <= PAIRS; i++) {
      p.beforePair?.(i);
      // Each side first, second and third in turn.
      const sides = (['raw', 'baseline', 'pgplay'] as const).map((_, k, all) => all[(k + i) % 3]!);
      const t: Record<string, number> = {};
      for (const side of sides) t[side] = once(side);
      const pair: Pair = { first: sides[0] === 'raw' ? 'raw' : 'pgplay', raw: t.raw!, pgplay: t.pgplay!, baseline: t.baseline! };
      result.pairs.push(pair);
      console.log(`  ${p.name} round ${i}/${PAIRS}: raw ${pair.raw.toFixed(2)} s, baseline ${pair.baseline!.toFixed(2)} s, pgplay ${pair.pgplay.toFixed(2)} s (load ${loadavg()[0]!.toFixed(1)})`);
    }
    return result;
  }
  for (let i = 1; i <= PAIRS; i++) {
    p.beforePair?.(i);
    const first = i % 2 === 1 ? 'raw' : 'pgplay';
    const a = once(first);
    const b = once(first === 'raw' ? 'pgplay' : 'raw');
    const pair: Pair = first === 'raw' ? { first, raw: a, pgplay: b } : { first, raw: b, pgplay: a };
    result.pairs.push(pair);
    console.log(`  ${p.name} pair ${i}/${PAIRS}: raw ${pair.raw.toFixed(2)} s, pgplay ${pair.pgplay.toFixed(2)} s (load ${loadavg()[0]!.toFixed(1)})`);
  }
  return result;
}

function gitRev(dir: string): string {
  const r = spawnSync('git', ['-C', dir, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().slice(0, 100) : 'unknown';
}

function tearDown(): void {
  if (opts.keep) return;
  try {
    exec(pgplayCmd('lab', 'down', '--dir', LAB));
    // The runs' journals and locks went with the lab; kept where the lab could not be taken down.
    rmSync(STATE, { recursive: true, force: true });
    rmSync(BASELINE_STATE, { recursive: true, force: true });
  } catch (e) {
    console.error(`lab down failed: ${(e as Error).message}`);
  }
}

process.on('SIGINT', () => {
  tearDown();
  process.exit(130);
});

const selected = opts.only ? procedures.filter((p) => opts.only!.split(',').includes(p.name)) : procedures;
const results: ProcedureResult[] = [];
const loads: number[] = [loadavg()[0]!];
const started = new Date();
let failure: Error | undefined;
try {
  console.log(`lab ${LAB} (ports ${BASE_PORT}-${BASE_PORT + 2}), pgbench scale ${SCALE}, ${PAIRS} pairs; log ${LOG}`);
  setUp();
  for (const p of selected) {
    console.log(`${p.name}:`);
    loads.push(loadavg()[0]!);
    results.push(measure(p));
    loads.push(loadavg()[0]!);
  }
} catch (e) {
  failure = e as Error;
} finally {
  tearDown();
}

const header =
  `Procedure benchmark ${opts.label ? `(${opts.label}) ` : ''}of ${started.toISOString()}: pgplay ${gitRev(PGPLAY)} at ${PGPLAY}; ` +
  `pgbench scale ${SCALE}; ${PAIRS} interleaved pairs per procedure (order alternating, one untimed pair first); ` +
  `${cpus().length} CPUs; 1-minute load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} during the runs.\n\n`;
const md = header + (BASELINE ? `Baseline: pgplay ${gitRev(BASELINE)} at ${BASELINE}, in the same rounds.\n\n` + baselineTable(results) + '\n' : '') + table(results);
writeFileSync(join(OUT, 'results.json'), JSON.stringify({ started, pgplay: PGPLAY, rev: gitRev(PGPLAY), scale: SCALE, pairs: PAIRS, loads, results: results.map((r) => ({ ...r, summary: summarize(r) })) }, null, 2) + '\n');
writeFileSync(join(OUT, 'results.md'), md);
process.stdout.write(`\n${md}\nraw results: ${OUT}\n`);
if (failure) {
  console.error(`bench:procedures failed: ${failure.message}`);
  process.exit(1);
}
