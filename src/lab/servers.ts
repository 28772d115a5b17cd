/**
 * The lab's PostgreSQL servers, found and stopped strictly by the pid in their own postmaster.pid:
 * other PostgreSQL servers on this machine (the lab may share it with production or other labs) are
 * never signalled, and nothing is ever stopped by process name.
 */
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PgplayError } from '../core/errors.js';

export interface ServerRef {
  name: string;
  pgdata: string;
  bindir: string;
  port: number;
  /** Run pg_ctl as this user (root cannot). */
  become?: string;
}

export async function postmasterPid(pgdata: string): Promise<number | undefined> {
  try {
    const first = (await readFile(join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]!.trim();
    return /^\d+$/.test(first) ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster pid when this PGDATA's server runs, else undefined (a stale postmaster.pid counts as stopped). */
export async function runningPid(server: ServerRef): Promise<number | undefined> {
  const pid = await postmasterPid(server.pgdata);
  return pid !== undefined && pidAlive(pid) ? pid : undefined;
}

function asOwner(server: ServerRef, argv: string[]): [string, string[]] {
  return server.become ? ['runuser', ['-u', server.become, '--', ...argv]] : [argv[0]!, argv.slice(1)];
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * pg_ctl stop -m fast; if the postmaster is still there after that, -m immediate (the lab's data is
 * disposable). Either way the pid from postmaster.pid must be gone before this returns.
 */
export async function stopServer(server: ServerRef): Promise<'stopped' | 'not running'> {
  const pid = await runningPid(server);
  if (pid === undefined) return 'not running';
  for (const mode of ['fast', 'immediate']) {
    const [cmd, args] = asOwner(server, [join(server.bindir, 'pg_ctl'), 'stop', '-D', server.pgdata, '-m', mode, '-w', '-t', '60']);
    await execa(cmd, args, { reject: false, env: { LC_ALL: 'C' }, cwd: '/' });
    if (await waitGone(pid, 15_000)) return 'stopped';
  }
  throw new PgplayError({
    code: 'STEP_FAILED',
    message: `the lab's PostgreSQL on ${server.name} (pid ${pid}, ${server.pgdata}) is still running after pg_ctl stop -m immediate`,
    hint: `stop it yourself (kill ${pid}) and run pgplay lab down again`,
  });
}
