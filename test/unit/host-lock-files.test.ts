/**
 * A host lock on a local host is taken and released by this process's own file calls, not by a shell
 * and its mkdir, cat, ln and rm (src/lock/host-lock-files.ts); both ways answer alike and leave the
 * same files with the same modes, which the table below checks side by side on one directory tree each.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireHostLocks } from '../../src/lock/host-lock.js';
import { inProcessLockFiles, lockFilesByCommands, type HostLockFiles } from '../../src/lock/host-lock-files.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { LocalTransport } from '../../src/transports/local.js';
import type { Transport } from '../../src/transports/types.js';
import { localHost, tempDir } from './support/action-context.js';

let dir: { path: string; cleanup(): Promise<void> };
const transport = new LocalTransport(localHost({ name: 'db1' }));

beforeAll(async () => {
  dir = await tempDir('host-lock-files');
});
afterAll(async () => {
  await transport.close();
  await dir.cleanup();
});

/** The local transport, with every command it is asked to run noted. */
function counting(inner: Transport): { transport: Transport; commands: string[][] } {
  const commands: string[][] = [];
  const wrapped = Object.create(inner) as Transport;
  wrapped.exec = (argv, options) => {
    commands.push(argv);
    return inner.exec(argv, options);
  };
  return { transport: wrapped, commands };
}

describe('a local host lock', () => {
  it('is taken and released without starting a process', async () => {
    const pgdata = join(dir.path, 'cluster', 'data');
    await mkdir(pgdata, { recursive: true });
    const host = { ...localHost({ name: 'db1' }), role: 'primary', pgdata } as Host;
    const inventory = { cluster: 'main', postgres: { version: 15 }, hosts: {} } as unknown as Inventory;
    const { transport: noted, commands } = counting(transport);
    const locks = await acquireHostLocks([host], inventory, () => noted, { runId: 'run-1', playbook: '/p.yml', warn: () => undefined });
    const path = join(dir.path, 'cluster', '.pgplay', 'locks', 'main.lock');
    expect(JSON.parse(readFileSync(path, 'utf8'))).toMatchObject({ runId: 'run-1', pid: process.pid });
    await locks.release();
    expect(existsSync(path)).toBe(false);
    expect(commands).toEqual([]);
  });
});

describe('the lock files in this process answer as the shell commands do', () => {
  const ways: Array<[string, () => HostLockFiles]> = [
    ['shell commands', () => lockFilesByCommands(transport)],
    ['this process', () => inProcessLockFiles],
  ];
  for (const [way, files] of ways) {
    it(way, async () => {
      const root = join(dir.path, way.replace(/ /g, '-'));
      const base = join(root, 'base');
      const locks = join(base, '.pgplay', 'locks');
      const path = join(locks, 'main.lock');
      const mine = '{"runId":"mine","pid":1}\n';
      const theirs = '{"runId":"theirs","pid":2}\n';
      // Nothing to lock where the base directory is missing: nothing is created.
      expect(await files().acquire(locks, path, base, mine)).toEqual({ answer: 'absent' });
      expect(existsSync(base)).toBe(false);
      await mkdir(base, { recursive: true });
      expect(await files().acquire(locks, path, base, mine)).toEqual({ answer: 'acquired' });
      expect(readFileSync(path, 'utf8')).toBe(mine);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(base, '.pgplay')).mode & 0o777).toBe(0o700);
      expect(statSync(locks).mode & 0o777).toBe(0o700);
      expect(await files().acquire(locks, path, base, theirs)).toEqual({ answer: 'held', holder: mine.trim() });
      // Released only by its run; the temp files are gone.
      await files().release(path, 'theirs');
      expect(existsSync(path)).toBe(true);
      await files().release(path, 'mine');
      expect(existsSync(path)).toBe(false);
      // A stale lock is taken over when it is still the one judged, put back when it changed hands.
      await writeFile(path, theirs);
      expect(await files().takeOver(path, 'someone-else')).toBe('changed');
      expect(readFileSync(path, 'utf8')).toBe(theirs);
      expect(await files().takeOver(path, 'theirs')).toBe('taken');
      expect(existsSync(path)).toBe(false);
      await writeFile(path, 'garbage');
      expect(await files().takeOver(path, '')).toBe('taken');
      expect(await files().takeOver(path, '')).toBe('taken'); // gone already
      expect((await import('node:fs')).readdirSync(locks)).toEqual([]);
      // A directory that cannot be made is an error, not a lock.
      await writeFile(join(root, 'file'), '');
      expect(await files().acquire(join(root, 'file', 'locks'), join(root, 'file', 'locks', 'x.lock'), '', mine)).toMatchObject({ answer: 'error' });
    });
  }
});
