import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postmasterSeen, postmasterWatchArgv, type PostmasterWatch } from '../../src/postgres/postmaster-watch.js';

const run = promisify(execFile);

/*
 * The watcher of postmaster-watch.ts, run by the real perl against postmaster.pid files written here in
 * PostgreSQL's format (pid, data directory, start time, port, socket directory, listen address, shared
 * memory key, status padded to 8). The "postmaster" is a sleep whose parent is a script named pg_ctl, as a
 * real postmaster's parent is the pg_ctl that forked it while pg_ctl waits.
 */
describe('postmaster-watch: the postmaster.pid tests pg_ctl -w makes, every 10 ms', () => {
  let dir: string;
  let pgCtl: ChildProcess;
  let postmaster: number;
  const now = () => Math.floor(Date.now() / 1000);
  const pidFile = (pid: number, started: number, status: string | undefined) =>
    [String(pid), '/var/lib/postgresql/15/main', String(started), '5432', '/run/postgresql', '127.0.0.1', '  1234567     0', ...(status === undefined ? [] : [status.padEnd(8)])].join('\n') + '\n';

  /** The watcher of `pgdata`'s postmaster.pid with a limit of 1 s: its exit code, its output and what it saw. */
  const watch = async (pgdata: string, notPid = 0, mode: PostmasterWatch = 'up') => {
    const [cmd, ...args] = postmasterWatchArgv(mode, pgdata, notPid, '1');
    const r = await run(cmd!, args).then(
      (ok) => ({ code: 0, stdout: ok.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, stdout: e.stdout }),
    );
    return { ...r, seen: postmasterSeen(mode, r.stdout) };
  };
  let cases = 0;
  /** A data directory of its own holding `content` as its postmaster.pid (none when undefined). */
  const pgdataWith = async (content?: string) => {
    const pgdata = join(dir, `pgdata${cases++}`);
    await mkdir(pgdata);
    if (content !== undefined) await writeFile(join(pgdata, 'postmaster.pid'), content);
    return pgdata;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-ready-'));
    const script = join(dir, 'pg_ctl');
    await writeFile(script, '#!/bin/sh\nsleep 60 &\necho $!\nwait\n');
    await chmod(script, 0o755);
    pgCtl = spawn(script, [], { stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = await createInterface({ input: pgCtl.stdout! })[Symbol.asyncIterator]().next().then((r) => [r.value as string]);
    postmaster = Number(line);
  });
  afterAll(async () => {
    // By pid: the sleep, then its pg_ctl.
    if (postmaster > 0) process.kill(postmaster, 'SIGTERM');
    pgCtl?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  it('names a live postmaster of a pg_ctl started just now whose status is ready (accepting connections) or standby', async () => {
    expect(postmaster).toBeGreaterThan(0);
    expect(await watch(await pgdataWith(pidFile(postmaster, now(), 'ready')))).toEqual({
      code: 0,
      stdout: `ready ${postmaster} ready\n`,
      seen: `the server is up (postmaster ${postmaster}, status ready)`,
    });
    expect((await watch(await pgdataWith(pidFile(postmaster, now(), 'standby')))).seen).toBe(`the server is up (postmaster ${postmaster}, status standby)`);
  });

  it('waits while the postmaster starts (no file yet, then status starting) and names it once it is up', async () => {
    const pgdata = await pgdataWith();
    const watching = watch(pgdata);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await writeFile(join(pgdata, 'postmaster.pid'), pidFile(postmaster, now(), 'starting'));
    await new Promise((resolve) => setTimeout(resolve, 150));
    await writeFile(join(pgdata, 'postmaster.pid'), pidFile(postmaster, now(), 'standby'));
    // Not "starting": the watcher named the postmaster only once the status said it was up.
    expect((await watching).stdout).toBe(`ready ${postmaster} standby\n`);
  });

  it('names nothing for the postmaster a restart replaces, one started 3 s before the watch, a dead one, one not started by a pg_ctl, one stopping, a bad pid, or a server without a status line (before PostgreSQL 10)', async () => {
    const cases: Array<[string, string, number]> = [
      ['the replaced postmaster', pidFile(postmaster, now(), 'ready'), postmaster],
      ['started 3 s before the watch', pidFile(postmaster, now() - 3, 'ready'), 0],
      ['a pid that is not alive', pidFile(2 ** 22 + 12345, now(), 'ready'), 0],
      ['a live process whose parent is not a pg_ctl', pidFile(process.pid, now(), 'ready'), 0],
      ['stopping', pidFile(postmaster, now(), 'stopping'), 0],
      ['a negative pid', pidFile(-postmaster, now(), 'ready'), 0],
      ['no status line', pidFile(postmaster, now(), undefined), 0],
    ];
    // At the same time, each in a directory of its own, each until the watcher's limit.
    const found = await Promise.all(cases.map(async ([what, content, notPid]) => ({ what, ...(await watch(await pgdataWith(content), notPid)) })));
    expect(found).toEqual(cases.map(([what]) => ({ what, code: 1, stdout: '', seen: undefined })));
  });

  it('gone: says so once postmaster.pid is removed (as a stopped postmaster does), not while it is there', async () => {
    const stopping = await pgdataWith(pidFile(postmaster, now(), 'stopping'));
    const watching = watch(stopping, 0, 'gone');
    await new Promise((resolve) => setTimeout(resolve, 150));
    await rm(join(stopping, 'postmaster.pid'));
    expect(await watching).toEqual({ code: 0, stdout: 'gone\n', seen: 'the server is gone (postmaster.pid removed)' });
    // Nothing, until the limit: a server that stays (its file stays); a file never seen (a stop that found none,
    // or a directory that is not there: not a server that stopped).
    const nothing = { code: 1, stdout: '', seen: undefined };
    const [stays, neverSeen, noDirectory] = await Promise.all([
      watch(await pgdataWith(pidFile(postmaster, now(), 'ready')), 0, 'gone'),
      watch(await pgdataWith(), 0, 'gone'),
      watch(join(dir, 'no-such-pgdata'), 0, 'gone'),
    ]);
    expect({ stays, neverSeen, noDirectory }).toEqual({ stays: nothing, neverSeen: nothing, noDirectory: nothing });
  });
});
