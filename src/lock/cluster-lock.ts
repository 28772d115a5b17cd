import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { processAlive, processStartTime } from './process.js';

/** What a lock file holds: enough for a human to find the holder and for us to tell if it died. */
export interface LockInfo {
  cluster: string;
  runId: string;
  playbook: string;
  pid: number;
  hostname: string;
  started: string;
  /** The holder's kernel start time, so a recycled pid does not keep a dead run's lock alive. */
  procStart?: string;
}

export type HolderState = 'alive' | 'dead' | 'unknown';

export function lockPath(stateDir: string, cluster: string): string {
  return join(stateDir, 'locks', `${cluster.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}

/** The holder of a lock, or null when the file is missing; 'corrupt' when it cannot be parsed. */
export function readLock(path: string): LockInfo | 'corrupt' | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw lockIoError(path, e);
  }
  try {
    const info = JSON.parse(text) as LockInfo;
    return typeof info.pid === 'number' && typeof info.runId === 'string' ? info : 'corrupt';
  } catch {
    return 'corrupt';
  }
}

/** Alive or dead when the holder ran on this machine; unknown for another machine's lock. */
export function holderState(info: LockInfo): HolderState {
  if (info.hostname !== hostname()) return 'unknown';
  return processAlive(info.pid, info.procStart) ? 'alive' : 'dead';
}

export function describeHolder(info: LockInfo): string {
  return `run ${info.runId} (pid ${info.pid} on ${info.hostname}, playbook ${info.playbook}, since ${info.started})`;
}

/**
 * The one-run-per-cluster lock. Held from before facts are gathered until the run ends; released on
 * every exit path: normally by release(), and by a process 'exit' hook when the process leaves
 * abruptly (a second Ctrl-C calls process.exit). Only kill -9 leaves it behind, and then the next run
 * finds the holder's pid dead and reports the lock as stale.
 */
export class ClusterLock {
  private released = false;
  private readonly onExit = () => this.release();

  constructor(
    readonly path: string,
    readonly info: LockInfo,
    /** The stale holder this lock replaced under --force, if any. */
    readonly tookOver?: LockInfo | 'corrupt',
  ) {
    process.on('exit', this.onExit);
  }

  /** Removes the lock file if it is still ours (a --force elsewhere may have taken it over). */
  release(): void {
    if (this.released) return;
    this.released = true;
    process.off('exit', this.onExit);
    try {
      const current = readLock(this.path);
      if (current && current !== 'corrupt' && current.runId === this.info.runId && current.pid === this.info.pid) unlinkSync(this.path);
    } catch {
      // Releasing must never mask the run's own outcome; a leftover lock is reported as stale later.
    }
  }
}

export interface AcquireOptions {
  /** Take over a lock whose holder is dead (or unverifiable: another machine, unreadable file). */
  force?: boolean;
}

/**
 * Creates the lock atomically: the content goes to a private temp file first and is then hard-linked
 * to the lock name, which fails with EEXIST when a lock exists (the same guarantee as O_EXCL, but a
 * reader never sees a half-written lock).
 */
export function acquireClusterLock(
  stateDir: string,
  cluster: string,
  owner: { runId: string; playbook: string },
  options: AcquireOptions = {},
): ClusterLock {
  const path = lockPath(stateDir, cluster);
  const info: LockInfo = {
    cluster,
    runId: owner.runId,
    playbook: owner.playbook,
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    procStart: processStartTime(process.pid),
  };
  try {
    mkdirSync(join(stateDir, 'locks'), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw lockIoError(path, e);
  }
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writePrivate(tmp, JSON.stringify(info) + '\n');
  let tookOver: LockInfo | 'corrupt' | undefined;
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        linkSync(tmp, path);
        return new ClusterLock(path, info, tookOver);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw lockIoError(path, e);
      }
      const holder = readLock(path);
      if (holder === null) continue; // released between our link and our read
      const state: HolderState = holder === 'corrupt' ? 'dead' : holderState(holder);
      if (state === 'alive' || !options.force) throw lockRefusal(cluster, path, holder, state);
      if (moveStaleAside(path, holder)) tookOver = holder;
    }
    throw new PgplayError({ code: 'LOCK', message: `could not take the lock ${path}: it keeps changing hands`, hint: 'retry in a moment' });
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

/**
 * Renames the stale lock out of the way. rename() succeeds for exactly one of several racing
 * --force runs; the winner then competes for the lock name like everyone else. A lock that changed
 * between our judgement and the rename is put back untouched.
 */
function moveStaleAside(path: string, judged: LockInfo | 'corrupt'): boolean {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw lockIoError(path, e);
  }
  const moved = readLock(aside);
  const same =
    judged === 'corrupt' ? moved === 'corrupt' : moved !== null && moved !== 'corrupt' && moved.runId === judged.runId && moved.pid === judged.pid;
  if (!same) {
    try {
      linkSync(aside, path);
    } catch {
      // someone else took the name meanwhile; the live holder we moved stays recorded beside it
      return false;
    }
    unlinkSync(aside);
    return false;
  }
  unlinkSync(aside);
  return true;
}

function lockRefusal(cluster: string, path: string, holder: LockInfo | 'corrupt', state: HolderState): PgplayError {
  if (holder === 'corrupt') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" has an unreadable lock file ${path} (a run died while creating it?)`,
      hint: 'make sure no pgplay run is working on this cluster, then rerun with --force to take the lock over',
    });
  }
  if (state === 'dead') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" has a stale lock: ${describeHolder(holder)} is no longer running`,
      hint: `that run stopped without releasing the lock; check its journal (pgplay history) and the cluster, then rerun with --force to take the lock over`,
    });
  }
  if (state === 'unknown') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" is locked by ${describeHolder(holder)}; that machine's processes cannot be checked from here`,
      hint: `if that run is gone, rerun with --force to take the lock over (lock file ${path})`,
    });
  }
  return new PgplayError({
    code: 'LOCK',
    message: `cluster "${cluster}" is locked by ${describeHolder(holder)}`,
    hint: 'one run at a time per cluster: wait for that run to finish',
  });
}

function writePrivate(path: string, text: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'wx', 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    throw lockIoError(path, e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function lockIoError(path: string, e: unknown): PgplayError {
  const err = e as NodeJS.ErrnoException;
  return new PgplayError({
    code: 'USAGE',
    message: `cannot use the lock file ${path}: ${err.code ?? err.message}`,
    hint: 'the state directory must be writable (--state-dir or PGPLAY_STATE_DIR)',
  });
}
