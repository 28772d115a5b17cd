/**
 * A lab per test file: its own temp directory (traversable by the postgres user), its own state
 * directory (so the lab pointer and the run journal never touch the real ones) and its own ports in
 * 26000-26999. Everything goes through the CLI binary, as a user would run it; the servers are
 * stopped by `pgplay lab down`, which stops them by the pid in their postmaster.pid, and checked gone.
 */
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pidAlive } from '../../src/lab/servers.js';
import { CLI, runCli } from '../support/cli.js';

export { CLI };
export const PLAYBOOKS = resolve('playbooks');

export type LabHost = 'db1' | 'db2' | 'drill1';
const OFFSET: Record<LabHost, number> = { db1: 0, db2: 1, drill1: 2 };

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface JsonEvent {
  type: string;
  step?: string;
  host?: string;
  /** step-start: the hosts the step runs on. */
  hosts?: string[];
  status?: string;
  msg?: string;
  exitCode?: number;
  inventory?: string;
  recap?: Record<string, { ok: number; changed: number; skipped: number; failed: number }>;
  error?: { code: string; message: string; hint?: string };
}

export interface TestLab {
  dir: string;
  stateDir: string;
  basePort: number;
  env: Record<string, string>;
  port(host: LabHost): number;
  pgdata(host: LabHost): string;
  pgplay(args: string[]): Promise<RunResult>;
  /** pgplay run <playbook> with --output json: the exit code and the parsed events. */
  run(playbook: string, args?: string[]): Promise<RunResult & { events: JsonEvent[] }>;
  /** SQL through the host's socket as the postgres OS user; unaligned, tuples only. Throws on error. */
  psql(host: LabHost, sql: string, database?: string): Promise<string>;
  /** Like psql, but resolves with the exit code and stderr instead of throwing. */
  tryPsql(host: LabHost, sql: string, database?: string): Promise<RunResult>;
  pgbackrestInfo(): Promise<PgbackrestInfo>;
  postmasterPid(host: LabHost): Promise<number | undefined>;
  down(): Promise<void>;
}

export interface PgbackrestInfo {
  name: string;
  status: { code: number; message: string };
  backup: Array<{ label: string; type: string; prior: string | null; timestamp: { start: number; stop: number }; archive: { start: string; stop: string } }>;
}

export function events(stdout: string): JsonEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as JsonEvent);
}

/** step@host=status for every step result, in order. */
export function results(evs: JsonEvent[]): string[] {
  return evs.filter((e) => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}`);
}

export function changedSteps(evs: JsonEvent[]): string[] {
  return evs.filter((e) => e.type === 'step-result' && e.status === 'changed').map((e) => `${e.step}@${e.host}`);
}

export { pidAlive };

/** A postmaster may linger a moment after pg_ctl stop -w returns; resolves whether it is gone within ms. */
export async function waitGone(pid: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

export async function createLab(basePort: number, name: string): Promise<TestLab> {
  const root = await mkdtemp(join(tmpdir(), `pgplay-${name}-`));
  // mkdtemp makes a 0700 directory: the postgres user must be able to pass through it.
  await chmod(root, 0o755);
  const dir = join(root, 'lab');
  const stateDir = join(root, 'state');
  const env = { PGPLAY_STATE_DIR: stateDir, CI: 'true', PGPLAY_LAB_DIR: dir };
  const port = (h: LabHost) => basePort + OFFSET[h];
  const pgdata = (h: LabHost) => join(dir, h, 'data');

  // Within the calling test's time (support/cli.ts): a hung CLI fails that test and is stopped.
  const pgplay = (args: string[]): Promise<RunResult> => runCli(args, { env, cwd: root });
  const tryPsql = async (h: LabHost, sql: string, database = 'postgres'): Promise<RunResult> => {
    const r = await execa(
      'runuser',
      ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', join(dir, h, 'run'), '-p', String(port(h)), '-d', database, '-c', sql],
      { reject: false, cwd: '/' },
    );
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout.trim(), stderr: r.stderr };
  };
  const lab: TestLab = {
    dir,
    stateDir,
    basePort,
    env,
    port,
    pgdata,
    pgplay,
    async run(playbook, args = []) {
      const r = await pgplay(['run', join(PLAYBOOKS, playbook), '--output', 'json', ...args]);
      return { ...r, events: events(r.stdout) };
    },
    tryPsql,
    async psql(h, sql, database) {
      const r = await tryPsql(h, sql, database);
      if (r.exitCode !== 0) throw new Error(`psql on ${h} failed (${r.exitCode}): ${r.stderr}`);
      return r.stdout;
    },
    async pgbackrestInfo() {
      const r = await execa('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--config=${join(dir, 'bk1', 'pgbackrest.conf')}`, '--stanza=lab', '--output=json', 'info'], {
        reject: false,
        cwd: '/',
      });
      if (r.exitCode !== 0) throw new Error(`pgbackrest info failed: ${r.stderr}`);
      return (JSON.parse(r.stdout) as PgbackrestInfo[])[0]!;
    },
    async postmasterPid(h) {
      try {
        const pid = Number((await readFile(join(pgdata(h), 'postmaster.pid'), 'utf8')).split('\n')[0]);
        return pid > 0 && pidAlive(pid) ? pid : undefined;
      } catch {
        return undefined;
      }
    },
    async down() {
      const pids = (await Promise.all((['db1', 'db2', 'drill1'] as const).map((h) => lab.postmasterPid(h)))).filter((p): p is number => p !== undefined);
      const r = await pgplay(['lab', 'down', '--dir', dir]);
      const alive: number[] = [];
      for (const pid of pids) if (!(await waitGone(pid))) alive.push(pid);
      await rm(root, { recursive: true, force: true });
      if (r.exitCode !== 0 || alive.length) throw new Error(`lab down failed (${r.exitCode}; still running: ${alive.join(', ')}): ${r.stderr}`);
    },
  };
  return lab;
}

/** `pgplay lab up` for a test lab; fails the test with the run's output when it does not succeed. */
export async function labUp(lab: TestLab): Promise<RunResult> {
  const r = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--base-port', String(lab.basePort)]);
  if (r.exitCode !== 0) throw new Error(`lab up failed (${r.exitCode}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  return r;
}

/** Polls `probe` until `ok` holds or `ms` pass; returns the last value (the assertion shows what it was). */
export async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last = await probe();
  while (!ok(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    last = await probe();
  }
  return last;
}
