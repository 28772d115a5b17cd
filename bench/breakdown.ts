/**
 * Where a pgplay run's wall time goes: runs it with profile-hooks.ts preloaded and splits each run
 * into phases (node start, module loading, loading and validating the YAML, SSH handshakes, facts,
 * the steps' round trips, closing), reporting the median of each phase over the runs.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { summariseCpuProfile, type CpuShare } from './cpu-profile.js';
import type { Call, Profile } from './profile-hooks.js';

export interface Phases {
  bootstrap: number;
  modules: number;
  prepare: number;
  handshake: number;
  facts: number;
  steps: number;
  finish: number;
  exitToReaped: number;
  wall: number;
  roundTripsPerHost: number;
  roundTripMs: number;
  roundTripKinds: Record<string, number>;
}

export interface Breakdown {
  runs: Phases[];
  median: Phases;
  /** Self CPU time of one more run under `node --cpu-prof`, by package / pgplay directory. */
  cpu: { totalMs: number; shares: CpuShare[] };
  table: string[];
}

export interface BreakdownCommands {
  /** The run as users start it: once first, so the measured runs find the hosts converged. */
  plain: string;
  /** With profile-hooks preloaded; PGPLAY_BENCH_PROFILE names its output. */
  hooked: string;
  /** Under node --cpu-prof, writing into the given directory. */
  cpuProfiled: (dir: string) => string;
}

const LABELS: Array<[keyof Phases, string]> = [
  ['bootstrap', 'node starts (until the first module of pgplay loads)'],
  ['modules', 'loading the modules a run over SSH needs (pgplay\'s own, ssh2, yaml, handlebars)'],
  ['prepare', 'reading, validating and resolving inventory + playbook, journal and lock'],
  ['handshake', 'SSH handshakes (all hosts in parallel)'],
  ['facts', 'facts, and the first steps read ahead beside them (one round trip each per host, hosts in parallel)'],
  ['steps', 'the steps: round trips to the hosts after that, and checking the steps'],
  ['finish', 'after the last round trip: the remaining checks (answered from the read-ahead), recap, journal, closing'],
  ['exitToReaped', 'process exit until reaped'],
];

/** `label` names the scenario in the tables, e.g. "3 hosts × 20 steps". */
export async function breakdown(label: string, commands: BreakdownCommands, runs: number, env: NodeJS.ProcessEnv, scratch: string): Promise<Breakdown> {
  await runQuietly(commands.plain, env);
  const all: Phases[] = [];
  for (let i = 0; i < runs; i++) {
    const file = join(scratch, `profile-${i}.json`);
    const wall = await runQuietly(commands.hooked, { ...env, PGPLAY_BENCH_PROFILE: file });
    all.push(phases(JSON.parse(await readFile(file, 'utf8')) as Profile, wall));
    await rm(file, { force: true });
  }
  const dir = join(scratch, 'cpu-profile');
  await mkdir(dir, { recursive: true });
  await runQuietly(commands.cpuProfiled(dir), env);
  const [written] = await readdir(dir);
  if (!written) throw new Error('node --cpu-prof wrote no profile');
  const cpu = await summariseCpuProfile(join(dir, written));
  await rm(dir, { recursive: true, force: true });
  const median = medianOf(all);
  return { runs: all, median, cpu, table: table(label, median, cpu) };
}

/** Runs a command with output discarded; resolves with its wall time in ms, throws unless it exits 0. */
async function runQuietly(command: string, env: NodeJS.ProcessEnv): Promise<number> {
  const started = performance.now();
  const code = await new Promise<number>((resolve, reject) => {
    // exec: the shell becomes pgplay, so the wall time is pgplay's own.
    const child = spawn('/bin/sh', ['-c', `exec ${command}`], { stdio: 'ignore', env });
    child.once('error', reject);
    child.once('exit', (c) => resolve(c ?? 255));
  });
  if (code !== 0) throw new Error(`pgplay exited with ${code}: ${command}`);
  return performance.now() - started;
}

function phases(p: Profile, wall: number): Phases {
  const of = (kind: string) => p.calls.filter((c) => c.kind === kind);
  const connects = of('connect');
  const facts = of('facts');
  const ops = p.calls.filter((c) => !['connect', 'facts', 'close'].includes(c.kind));
  const firstConnect = Math.min(...connects.map((c) => c.start));
  const connected = Math.max(...connects.map((c) => c.end));
  // Round trips that started while facts were gathered (the run's first read-ahead) belong to that phase.
  const factsEnd = Math.max(...facts.map((c) => c.end));
  const factsDone = Math.max(factsEnd, ...ops.filter((c) => c.start < factsEnd).map((c) => c.end));
  const stepsDone = Math.max(factsDone, ...ops.map((c) => c.end));
  const hosts = new Set(ops.map((c) => c.host)).size || 1;
  const kinds: Record<string, number> = {};
  for (const c of ops) kinds[c.kind] = (kinds[c.kind] ?? 0) + 1 / hosts;
  return {
    bootstrap: p.preloadStart,
    modules: p.modulesLoaded - p.preloadStart,
    prepare: firstConnect - p.modulesLoaded,
    handshake: connected - firstConnect,
    facts: factsDone - connected,
    steps: stepsDone - factsDone,
    finish: p.exit - stepsDone,
    // The profile's clock starts when the process does; the spawn before that is in here too.
    exitToReaped: wall - p.exit,
    wall,
    roundTripsPerHost: ops.length / hosts,
    roundTripMs: median(ops.map((c: Call) => c.end - c.start)),
    roundTripKinds: kinds,
  };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function medianOf(runs: Phases[]): Phases {
  const out = {} as Phases;
  for (const key of Object.keys(runs[0]!) as Array<keyof Phases>) {
    if (key === 'roundTripKinds') out.roundTripKinds = runs[0]!.roundTripKinds;
    else (out as unknown as Record<string, number>)[key] = median(runs.map((r) => r[key] as number));
  }
  return out;
}

function table(label: string, m: Phases, cpu: { totalMs: number; shares: CpuShare[] }): string[] {
  const ms = (x: number) => `${x.toFixed(0)} ms`;
  const share = (x: number, of: number) => `${((100 * x) / of).toFixed(0)} %`;
  const kinds = Object.entries(m.roundTripKinds)
    .map(([k, n]) => `${Math.round(n)} ${k}`)
    .join(', ');
  return [
    `| phase of pgplay's no-change run (${label}; medians) | time | share |`,
    '|---|---|---|',
    ...LABELS.map(([key, label]) => `| ${label} | ${ms(m[key] as number)} | ${share(m[key] as number, m.wall)} |`),
    `| **wall time** | **${ms(m.wall)}** | |`,
    '',
    `Besides the facts, each host saw ${Math.round(m.roundTripsPerHost)} round trip(s) (${kinds}), ` +
      `${m.roundTripMs.toFixed(1)} ms each (median), hosts in parallel up to --forks.`,
    '',
    `| where one more no-change run (${label}) spends its time (node --cpu-prof, self time) | time | share |`,
    '|---|---|---|',
    ...cpu.shares.slice(0, 12).map((c) => `| ${c.where} | ${ms(c.ms)} | ${share(c.ms, cpu.totalMs)} |`),
    `| **profiled time** | **${ms(cpu.totalMs)}** | |`,
  ];
}
