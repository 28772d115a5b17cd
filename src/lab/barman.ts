/**
 * The lab's own Barman (--backup-tool barman) leaves a process behind: `barman cron` starts
 * `barman receive-wal` in the background, which runs pg_receivewal through the replication slot. `lab
 * down` stops it by the pid Barman writes into its lock file in the lab's barman_home, and only when
 * that pid's command line names the lab's own barman.conf (a stale lock file whose pid now belongs to
 * another process is left alone). pg_receivewal, its child, is waited for too.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { barmanPaths } from './layout.js';
import { pidAlive } from './servers.js';

/** Lock files of Barman's background commands: .<server>-receive-wal.lock (and the archiver's, the cron's). */
const LOCK = /^\.[a-z0-9_]+-(receive-wal|archive-wal|cron|backup)\.lock$/;

async function commandLine(pid: number): Promise<string[] | undefined> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const tid of tasks) {
    const text = await readFile(`/proc/${pid}/task/${tid}/children`, 'utf8').catch(() => '');
    for (const word of text.split(/\s+/)) if (/^\d+$/.test(word)) out.push(Number(word));
  }
  return out;
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(pidAlive)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** The pids of the lab's Barman processes: from its lock files, checked against their command line. */
export async function labBarmanPids(labDir: string): Promise<number[]> {
  const { home, config } = barmanPaths(labDir);
  const names = await readdir(home).catch(() => [] as string[]);
  const pids: number[] = [];
  for (const name of names.filter((n) => LOCK.test(n))) {
    const text = (await readFile(join(home, name), 'utf8').catch(() => '')).trim();
    if (!/^\d+$/.test(text)) continue;
    const pid = Number(text);
    const argv = await commandLine(pid);
    if (argv?.includes(config) && !pids.includes(pid)) pids.push(pid);
  }
  return pids;
}

/** Stops the lab's Barman processes (SIGTERM, which Barman forwards to pg_receivewal; SIGKILL after 15 s); their pids. */
export async function stopLabBarman(labDir: string): Promise<number[]> {
  const pids = await labBarmanPids(labDir);
  if (pids.length === 0) return [];
  const children = (await Promise.all(pids.map(childrenOf))).flat();
  const all = [...pids, ...children];
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  if (await waitGone(all, 15_000)) return pids;
  for (const pid of all.filter(pidAlive)) process.kill(pid, 'SIGKILL');
  if (await waitGone(all, 5_000)) return pids;
  throw new PgplayError({
    code: 'STEP_FAILED',
    message: `the lab's Barman processes ${all.filter(pidAlive).join(', ')} are still running after SIGKILL`,
    hint: 'stop them yourself and run pgplay lab down again',
  });
}
