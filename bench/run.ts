/**
 * pgplay against Ansible over real SSH, in one run: a converge playbook of 20 steps on 3 hosts
 * (first run and no-change run) and a 10-step fan-out on 30 hosts (time and peak memory).
 * Start it with `npm run bench` (bench/run.sh): that installs the tools and builds first.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { breakdown, type Breakdown } from './breakdown.js';
import { hyperfine, type TimedCommand, type TimingResult } from './hyperfine.js';
import { pgplayBin } from './pgplay-bin.js';
import { measurePeakMemory, type MemoryPeak } from './memory.js';
import { startRigs, type Rigs } from './rigs.js';
import { summary } from './summary.js';
import { ansibleRecap, capture, expectRecap, expectSameTrees, pgplayRecap } from './verify.js';
import { STEP_SETS, writeWorkload, type BenchHost, type StepSet, type Workload } from './workload.js';

/** The repository root: this file runs from dist/bench/bench/. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** What the `pgplay` bin runs (the bundle); the profiled runs take dist/cli/main.js, whose modules profile-hooks.ts patches. */
const CLI = pgplayBin(REPO).join(' ');
const UNBUNDLED_CLI = join(REPO, 'dist', 'cli', 'main.js');
const HOOKS = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), 'profile-hooks.js')).href;

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'fanout-runs': { type: 'string', default: '3' },
    'memory-runs': { type: 'string', default: '3' },
    results: { type: 'string', default: join(REPO, 'bench', 'results') },
    // Start the hosts, write and check the workload, print the commands, then wait for Ctrl-C: for
    // measuring one change by hand (hyperfine, --cpu-prof) without the whole 25-minute run.
    serve: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opts.runs);
const WARMUP = Number(opts.warmup);
const FANOUT_RUNS = Number(opts['fanout-runs']);
const MEMORY_RUNS = Number(opts['memory-runs']);

/** 3 hosts on 127.0.0.2-4 and, for the fan-out, 30 on 127.0.1.1-30: each loopback address is a host. */
const SMALL_ADDRESSES = [2, 3, 4].map((n, i) => ({ name: `h${i + 1}`, address: `127.0.0.${n}` }));
const FANOUT_ADDRESSES = Array.from({ length: 30 }, (_, i) => ({ name: `f${String(i + 1).padStart(2, '0')}`, address: `127.0.1.${i + 1}` }));
/** sshd MaxSessions: high, so neither tool ever waits for sshd's per-connection session limit. */
const MAX_SESSIONS = 100;

interface Scenario {
  set: StepSet;
  hosts: 'small' | 'fanout';
}

function stepsOf(set: StepSet): number {
  return STEP_SETS[set] * 2;
}

class Commands {
  constructor(
    private readonly w: Workload,
    private readonly stateDir: string,
  ) {}

  pgplay(s: Scenario, extra = '', nodeFlags = ''): string {
    const p = this.w.pgplay;
    // The bin as a shell runs it (bin/pgplay, the launcher); with node flags (profiles), node and tsc's output.
    const command = nodeFlags ? `node ${nodeFlags}${UNBUNDLED_CLI}` : CLI;
    return `${command} run ${join(p.dir, `${s.set}.yml`)} -i ${join(p.dir, `inventory-${s.hosts}.yml`)} --forks 10 --state-dir ${this.stateDir}${extra}`;
  }

  ansible(s: Scenario): string {
    const a = this.w.ansible;
    return `ansible-playbook -i ${join(a.dir, `inventory-${s.hosts}.ini`)} ${join(a.dir, `${s.set}.yml`)}`;
  }

  cleanPgplay(): string {
    return `rm -rf ${this.w.pgplay.targets}`;
  }

  cleanAnsible(): string {
    return `rm -rf ${this.w.ansible.targets}`;
  }
}

async function main(): Promise<void> {
  for (const tool of ['hyperfine', 'ansible-playbook', '/usr/sbin/sshd', '/usr/bin/time']) requireTool(tool);
  const started = new Date();
  const root = await mkdtemp(join(tmpdir(), 'pgplay-bench-'));
  let rigs: Rigs | undefined;
  let workload: Workload | undefined;
  const cleanup = once(async () => {
    if (workload) await stopControlMasters(workload.ansible.controlPathDir);
    if (rigs) {
      const pids = rigs.sshds.map((s) => s.pid);
      await rigs.stop();
      log(`sshd ${pids.join(', ')} stopped`);
    }
    await rm(root, { recursive: true, force: true });
  });
  // Ctrl-C or a kill still stops every sshd this run started (by pid) and the ssh masters.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      log(`${signal}: cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    // The rig sets MaxStartups 200, above 30, so the fan-out's simultaneous handshakes are never dropped.
    const launched = await startRigs([SMALL_ADDRESSES, FANOUT_ADDRESSES], { maxSessions: MAX_SESSIONS, dir: root }, (r) => (rigs = r));
    rigs = launched.rigs;
    const [SMALL, FANOUT] = launched.hosts as [BenchHost[], BenchHost[]];
    for (const s of rigs.sshds) log(`sshd pid ${s.pid} on port ${s.port}: ${s.addresses.join(' ')}`);
    workload = await writeWorkload(root, rigs, { small: SMALL, fanout: FANOUT });
    const env = { ...process.env, ANSIBLE_CONFIG: workload.ansible.config, ANSIBLE_NOCOLOR: '1', CI: 'true' };
    const cmd = new Commands(workload, join(root, 'state'));

    const small: Scenario = { set: 'converge20', hosts: 'small' };
    const fanout: Scenario = { set: 'converge10', hosts: 'fanout' };
    await verifyScenario(workload, cmd, small, SMALL, env);
    await verifyScenario(workload, cmd, fanout, FANOUT, env);
    if (opts.serve) return await serve(workload, cmd, [small, fanout], env);

    const exportTo = (name: string) => join(root, `hyperfine-${name}.json`);
    const timed = (s: Scenario, first: boolean): TimedCommand[] => [
      { name: 'pgplay', command: cmd.pgplay(s), prepare: first ? cmd.cleanPgplay() : undefined },
      { name: 'ansible', command: cmd.ansible(s), prepare: first ? cmd.cleanAnsible() : undefined },
    ];
    log(`3 hosts x ${stepsOf(small.set)} steps, first run (state wiped before each run)`);
    const smallFirst = await hyperfine(timed(small, true), { warmup: WARMUP, runs: RUNS, exportJson: exportTo('small-first'), env });
    log(`3 hosts x ${stepsOf(small.set)} steps, no-change run`);
    const smallNoChange = await hyperfine(timed(small, false), { warmup: WARMUP, runs: RUNS, exportJson: exportTo('small-nochange'), env });
    log(`30 hosts x ${stepsOf(fanout.set)} steps, first run`);
    const fanFirst = await hyperfine(timed(fanout, true), { warmup: WARMUP, runs: FANOUT_RUNS, exportJson: exportTo('fanout-first'), env });
    log(`30 hosts x ${stepsOf(fanout.set)} steps, no-change run`);
    const fanNoChange = await hyperfine(timed(fanout, false), { warmup: WARMUP, runs: FANOUT_RUNS, exportJson: exportTo('fanout-nochange'), env });

    log(`30 hosts: peak memory (${MEMORY_RUNS} first runs and ${MEMORY_RUNS} no-change runs per tool)`);
    const memory = await measureMemory(workload, cmd, fanout, env, root);

    const spent: Record<string, Breakdown> = {};
    for (const [key, scenario, label, runs] of [
      ['small', small, '3 hosts × 20 steps', RUNS],
      ['fanout', fanout, '30 hosts × 10 steps', FANOUT_RUNS],
    ] as const) {
      log(`where pgplay's no-change run spends its time: ${label}, ${runs} runs`);
      spent[key] = await breakdown(
        label,
        {
          plain: cmd.pgplay(scenario),
          hooked: cmd.pgplay(scenario, '', `--import ${HOOKS} `),
          cpuProfiled: (dir) => cmd.pgplay(scenario, '', `--cpu-prof --cpu-prof-dir=${dir} `),
        },
        runs,
        env,
        root,
      );
    }

    const results = {
      date: started.toISOString(),
      machine: machine(),
      settings: { runs: RUNS, warmup: WARMUP, fanoutRuns: FANOUT_RUNS, memoryRuns: MEMORY_RUNS, forks: 10, sshdMaxSessions: MAX_SESSIONS, sshdMaxStartups: 200 },
      commands: { small: { pgplay: cmd.pgplay(small), ansible: cmd.ansible(small) }, fanout: { pgplay: cmd.pgplay(fanout), ansible: cmd.ansible(fanout) } },
      timing: { smallFirst, smallNoChange, fanoutFirst: fanFirst, fanoutNoChange: fanNoChange },
      memory,
      breakdown: spent,
      loads,
    };
    await mkdir(opts.results!, { recursive: true });
    const stamp = started.toISOString().replace(/:/g, '-').replace(/\..*$/, '');
    const file = join(opts.results!, `${stamp}.json`);
    await writeFile(file, JSON.stringify(results, null, 2) + '\n');
    const md = summary(results);
    await writeFile(join(opts.results!, `${stamp}.md`), md);
    process.stdout.write(`\n${md}\nraw results: ${file}\n`);
  } finally {
    await cleanup();
  }
}

/** Prints a script that sets the environment and names each command, then waits for a signal (cleanup). */
async function serve(w: Workload, cmd: Commands, scenarios: Scenario[], env: NodeJS.ProcessEnv): Promise<never> {
  const lines = [`export ANSIBLE_CONFIG=${env.ANSIBLE_CONFIG} ANSIBLE_NOCOLOR=1 CI=true`];
  for (const s of scenarios) {
    const key = `${s.hosts}_${s.set}`;
    lines.push(`pgplay_${key}='${cmd.pgplay(s)}'`, `ansible_${key}='${cmd.ansible(s)}'`);
  }
  lines.push(`clean_pgplay='${cmd.cleanPgplay()}'`, `clean_ansible='${cmd.cleanAnsible()}'`);
  const file = join(w.pgplay.dir, '..', 'commands.sh');
  await writeFile(file, lines.join('\n') + '\n');
  log(`serving: source ${file}; Ctrl-C (or SIGTERM to pid ${process.pid}) stops the hosts`);
  return await new Promise<never>(() => {});
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => (running ??= fn());
}

/** One untimed first run and one no-change run per tool, checked, then the trees compared. */
async function verifyScenario(w: Workload, cmd: Commands, s: Scenario, hosts: BenchHost[], env: NodeJS.ProcessEnv): Promise<void> {
  const names = hosts.map((h) => h.name);
  const steps = stepsOf(s.set);
  log(`checking that both tools do the same work: ${hosts.length} hosts x ${steps} steps`);
  for (const [tool, clean, run, recapOf] of [
    ['pgplay', cmd.cleanPgplay(), cmd.pgplay(s, ' --output json'), pgplayRecap],
    ['ansible', cmd.cleanAnsible(), cmd.ansible(s), ansibleRecap],
  ] as const) {
    execFileSync('/bin/sh', ['-c', clean]);
    for (const [label, changed] of [['first', steps], ['no-change', 0]] as const) {
      const result = await capture(run, env);
      try {
        expectRecap(tool, recapOf(result), names, steps, changed);
      } catch (e) {
        const tail = (text: string) => text.split('\n').slice(-15).join('\n');
        throw new Error(`${label} run: ${(e as Error).message}\n--- ${run}\n${tail(result.stdout)}\n${tail(result.stderr)}`);
      }
    }
  }
  await expectSameTrees(w.pgplay.targets, w.ansible.targets, names);
}

async function measureMemory(w: Workload, cmd: Commands, s: Scenario, env: NodeJS.ProcessEnv, root: string) {
  const controlPaths = w.ansible.controlPathDir;
  const tools = [
    { name: 'pgplay', command: cmd.pgplay(s), clean: cmd.cleanPgplay(), extra: undefined },
    // The ControlPersist masters of this benchmark (named by their ControlPath) hold Ansible's connections.
    { name: 'ansible', command: cmd.ansible(s), clean: cmd.cleanAnsible(), extra: (c: string) => c.startsWith('ssh') && c.includes(controlPaths) },
  ];
  const out: Record<string, { first: MemoryPeak[]; noChange: MemoryPeak[] }> = {};
  for (const t of tools) {
    out[t.name] = { first: [], noChange: [] };
    for (let i = 0; i < MEMORY_RUNS; i++) {
      for (const phase of ['first', 'noChange'] as const) {
        if (phase === 'first') execFileSync('/bin/sh', ['-c', t.clean]);
        const peak = await measurePeakMemory(['/bin/sh', '-c', t.command], { env, extra: t.extra, timeReport: join(root, 'time-report.txt') });
        if (peak.exitCode !== 0) throw new Error(`${t.name} exited with ${peak.exitCode} while its memory was measured`);
        out[t.name]![phase].push(peak);
      }
    }
  }
  return out;
}

/** Ends the ControlPersist masters Ansible left behind, through their own control sockets. */
async function stopControlMasters(dir: string): Promise<void> {
  const sockets = await readdir(dir).catch(() => [] as string[]);
  for (const s of sockets) {
    try {
      execFileSync('ssh', ['-o', `ControlPath=${join(dir, s)}`, '-O', 'exit', 'bench'], { stdio: 'ignore' });
    } catch {
      // Already gone (ControlPersist expired).
    }
  }
}

function machine() {
  const version = (argv: string[]) => {
    try {
      return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
    } catch (e) {
      return String((e as { stderr?: string }).stderr ?? '').split('\n')[0]!.trim();
    }
  };
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    ansible: version(['ansible', '--version']),
    hyperfine: version(['hyperfine', '--version']),
    // ssh -V prints to stderr.
    openssh: execFileSync('/bin/sh', ['-c', 'ssh -V 2>&1'], { encoding: 'utf8' }).trim(),
    pgplayCommit: version(['git', '-C', REPO, 'rev-parse', '--short', 'HEAD']),
  };
}

function requireTool(tool: string): void {
  try {
    execFileSync('/bin/sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${tool} is missing: run the benchmark with bash bench/run.sh, which installs it`);
  }
}

/** The 1-minute load average as each phase starts: the machine is shared, so the figures say how busy it was. */
const loads: Array<{ phase: string; load1: number }> = [];

function log(line: string): void {
  loads.push({ phase: line, load1: Math.round(loadavg()[0]! * 100) / 100 });
  process.stderr.write(`bench: ${line}\n`);
}

export type Results = {
  date: string;
  machine: ReturnType<typeof machine>;
  settings: Record<string, number>;
  timing: Record<'smallFirst' | 'smallNoChange' | 'fanoutFirst' | 'fanoutNoChange', Record<string, TimingResult>>;
  memory: Awaited<ReturnType<typeof measureMemory>>;
  breakdown: Record<string, Breakdown>;
  loads: Array<{ phase: string; load1: number }>;
};

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
