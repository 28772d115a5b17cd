import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { acquireClusterLock, lockPath, readLock, type LockInfo } from '../../src/lock/cluster-lock.js';
import { processAlive, processStartTime } from '../../src/lock/process.js';

const DIST_LOCK = resolve('dist/lock/cluster-lock.js');

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'pgplay-lock-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): PgplayError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PgplayError);
    return e as PgplayError;
  }
  throw new Error('expected a refusal');
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = await execa('sh', ['-c', 'echo $$']);
  const pid = Number(child.stdout);
  expect(processAlive(pid)).toBe(false);
  return pid;
}

async function plantLock(cluster: string, info: Partial<LockInfo>): Promise<string> {
  const path = lockPath(stateDir, cluster);
  await mkdir(join(stateDir, 'locks'), { recursive: true });
  const full: LockInfo = {
    cluster,
    runId: '20240101T030000-dead00',
    playbook: '/srv/runbooks/nightly-backup.yml',
    pid: 1,
    hostname: hostname(),
    started: '2024-01-01T03:00:00.000Z',
    ...info,
  };
  await writeFile(path, JSON.stringify(full));
  return path;
}

describe('cluster lock', () => {
  it('is a private file naming the holder: pid, host, run, playbook, start time', async () => {
    const lock = acquireClusterLock(stateDir, 'main', { runId: '20240101T030000-aaaaaa', playbook: '/pb.yml' });
    const path = join(stateDir, 'locks', 'main.lock');
    expect(lock.path).toBe(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const info = JSON.parse(await readFile(path, 'utf8')) as LockInfo;
    expect(info).toMatchObject({ cluster: 'main', runId: '20240101T030000-aaaaaa', playbook: '/pb.yml', pid: process.pid, hostname: hostname() });
    expect(Date.parse(info.started)).toBeGreaterThan(Date.now() - 10_000);
    expect(info.procStart).toBe(processStartTime(process.pid));
    lock.release();
    expect(existsSync(path)).toBe(false);
    // no temp files are left beside it
    expect(await readdir(join(stateDir, 'locks'))).toEqual([]);
  });

  it('refuses a second holder with exit 3, naming who holds it; other clusters are independent', () => {
    const first = acquireClusterLock(stateDir, 'main', { runId: '20240101T030000-aaaaaa', playbook: '/pb/nightly.yml' });
    const err = refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T030001-bbbbbb', playbook: '/pb/promote.yml' }));
    expect(err.code).toBe('LOCK');
    expect(err.exitCode).toBe(3);
    expect(err.message).toMatch(
      new RegExp(`^cluster "main" is locked by run 20240101T030000-aaaaaa \\(pid ${process.pid} on ${hostname()}, playbook /pb/nightly.yml, since \\d{4}-`),
    );
    // --force never takes a lock from a live holder
    expect(refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T030001-bbbbbb', playbook: '/x' }, { force: true })).code).toBe('LOCK');
    const other = acquireClusterLock(stateDir, 'reporting', { runId: '20240101T030001-bbbbbb', playbook: '/x' });
    other.release();
    first.release();
    acquireClusterLock(stateDir, 'main', { runId: '20240101T030002-cccccc', playbook: '/x' }).release();
  });

  it('reports a stale lock of a dead pid and takes it over only with --force', async () => {
    const pid = await deadPid();
    const path = await plantLock('main', { pid });
    const err = refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }));
    expect(err.exitCode).toBe(3);
    expect(err.message).toBe(
      `cluster "main" has a stale lock: run 20240101T030000-dead00 (pid ${pid} on ${hostname()}, playbook /srv/runbooks/nightly-backup.yml, since 2024-01-01T03:00:00.000Z) is no longer running`,
    );
    expect(err.hint).toMatch(/--force/);
    expect((readLock(path) as LockInfo).pid).toBe(pid);

    const lock = acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }, { force: true });
    expect(lock.tookOver).toMatchObject({ pid, runId: '20240101T030000-dead00' });
    expect((readLock(path) as LockInfo).runId).toBe('20240101T040000-aaaaaa');
    lock.release();
    expect(existsSync(path)).toBe(false);
  });

  it('sees through a recycled pid: a live pid with another start time is stale', async () => {
    await plantLock('main', { pid: process.pid, procStart: '1' });
    const err = refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }));
    expect(err.message).toMatch(/stale lock: .* is no longer running$/);
  });

  it('treats an unreadable lock as stale and a lock from another machine as unverifiable', async () => {
    const path = lockPath(stateDir, 'main');
    await mkdir(join(stateDir, 'locks'), { recursive: true });
    await writeFile(path, '');
    expect(refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' })).message).toBe(
      `cluster "main" has an unreadable lock file ${path} (a run died while creating it?)`,
    );
    const forced = acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }, { force: true });
    expect(forced.tookOver).toBe('corrupt');
    forced.release();

    await plantLock('main', { hostname: 'other-admin-box', pid: process.pid });
    const err = refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }));
    expect(err.message).toMatch(/locked by run .* on other-admin-box.*that machine's processes cannot be checked from here$/);
    acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }, { force: true }).release();
  });

  it('release leaves alone a lock that --force handed to another run', async () => {
    const lock = acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' });
    const path = await plantLock('main', { runId: '20240101T050000-bbbbbb', pid: process.pid });
    lock.release();
    expect((readLock(path) as LockInfo).runId).toBe('20240101T050000-bbbbbb');
  });

  it('exactly one of many processes racing for the lock wins', async () => {
    const script = `
      const { acquireClusterLock } = await import(${JSON.stringify(DIST_LOCK)});
      // All racers start together, whatever their start-up time.
      await new Promise((r) => setTimeout(r, Number(process.argv[2]) - Date.now()));
      try {
        const lock = acquireClusterLock(process.argv[1], 'race', { runId: '20240101T000000-' + process.pid.toString(16), playbook: '/x' });
        console.log('won');
        await new Promise((r) => setTimeout(r, 1500));
        lock.release();
      } catch (e) { console.log(e.code); }
    `;
    const barrier = String(Date.now() + 3000);
    const racers = await Promise.all(
      Array.from({ length: 8 }, () => execa('node', ['--input-type=module', '-e', script, stateDir, barrier], { reject: false })),
    );
    const outcomes = racers.map((r) => r.stdout.trim()).sort();
    expect(outcomes).toEqual(['LOCK', 'LOCK', 'LOCK', 'LOCK', 'LOCK', 'LOCK', 'LOCK', 'won']);
    expect(existsSync(lockPath(stateDir, 'race'))).toBe(false);
  });

  it('is released when the process exits abruptly (a second Ctrl-C calls process.exit)', async () => {
    const script = `
      const { acquireClusterLock } = await import(${JSON.stringify(DIST_LOCK)});
      acquireClusterLock(process.argv[1], 'main', { runId: '20240101T000000-abcdef', playbook: '/x' });
      process.exit(130);
    `;
    const r = await execa('node', ['--input-type=module', '-e', script, stateDir], { reject: false });
    expect(r.exitCode).toBe(130);
    expect(existsSync(lockPath(stateDir, 'main'))).toBe(false);
  });

  it('names an unwritable state directory as an input problem (exit 2)', async () => {
    await writeFile(join(stateDir, 'locks'), 'not a directory');
    const err = refusal(() => acquireClusterLock(stateDir, 'main', { runId: '20240101T040000-aaaaaa', playbook: '/x' }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(`cannot use the lock file ${join(stateDir, 'locks', 'main.lock')}: EEXIST`);
  });
});
