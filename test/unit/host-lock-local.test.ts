/**
 * A local host's cluster lock is released in-process (src/lock/host-lock.ts): the lock file is on this
 * machine and the release command would run as this process's user, so no shell is started for it.
 * Counted as commands the transport ran; what the lock directory holds after the release.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { acquireHostLocks } from '../../src/lock/host-lock.js';
import type { Inventory } from '../../src/model/inventory.js';
import { LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir } from './support/action-context.js';

const inventory = { cluster: 'main', postgres: { version: 15 }, hosts: {} } as unknown as Inventory;
let dir: { path: string; cleanup(): Promise<void> } | undefined;
afterEach(async () => dir?.cleanup());

describe('host locks on a local host', () => {
  it('the release runs no command: the lock file of the run is removed, another run\'s is left alone', async () => {
    dir = await tempDir('host-lock');
    const db1 = localHost({ name: 'db1', role: 'primary', vars: { pgplay_dir: dir.path } });
    const transport = new LocalTransport(db1);
    const exec = vi.spyOn(transport, 'exec');
    const locks = await acquireHostLocks([db1], inventory, () => transport, { runId: 'run-1', playbook: '/p.yml', warn: () => undefined });
    const lockDir = join(dir.path, 'locks');
    expect(await readdir(lockDir)).toEqual(['main.lock']);
    const taking = exec.mock.calls.length;
    await locks.release();
    expect(exec.mock.calls.length - taking).toBe(0);
    expect(await readdir(lockDir)).toEqual([]);

    // A lock another run holds now (taken over with --force meanwhile) is not ours to remove.
    const again = await acquireHostLocks([db1], inventory, () => transport, { runId: 'run-2', playbook: '/p.yml', warn: () => undefined });
    await writeFile(join(lockDir, 'main.lock'), JSON.stringify({ runId: 'run-3', pid: 1 }) + '\n');
    await again.release();
    expect(await readdir(lockDir)).toEqual(['main.lock']);
    await transport.close();
  });
});
