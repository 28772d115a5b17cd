import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir } from './support/action-context.js';

// getent found first on PATH: a shim that logs its arguments and runs the real one.
let dir: { path: string; cleanup(): Promise<void> };
let log: string;
const path = process.env.PATH;
beforeAll(async () => {
  dir = await tempDir('local-ids');
  log = join(dir.path, 'getent.log');
  await writeFile(log, '');
  const shim = join(dir.path, 'getent');
  await writeFile(shim, `#!/bin/sh\necho "$*" >> ${log}\nexec /usr/bin/getent "$@"\n`);
  await chmod(shim, 0o755);
  process.env.PATH = `${dir.path}:${path}`;
});
afterAll(async () => {
  process.env.PATH = path;
  await dir.cleanup();
});

describe('user and group lookups of the local transport', () => {
  it('are cached for the machine: hosts on this machine ask getent once per uid and gid', async () => {
    const file = join(dir.path, 'owned');
    await writeFile(file, 'x');
    await chown(file, 101, 104);
    const stats = [];
    for (const name of ['db1', 'db2', 'db3']) {
      const transport = new LocalTransport(localHost({ name }));
      stats.push(await transport.stat(file), await transport.stat(file));
      // Writing as postgres:postgres resolves the names the other way.
      await transport.writeFile(join(dir.path, `${name}.conf`), 'y', { owner: 'postgres', group: 'postgres', mode: 0o640 });
    }
    expect(stats.map((s) => `${s.owner}:${s.group}`)).toEqual(Array(6).fill('postgres:postgres'));
    expect((await readFile(log, 'utf8')).trim().split('\n').sort()).toEqual(['group 104', 'group postgres', 'passwd 101', 'passwd postgres']);
  });

  it('a user not found is asked again: a later step may create it', async () => {
    await writeFile(log, '');
    const transport = new LocalTransport(localHost());
    for (let i = 0; i < 2; i++) {
      await expect(transport.writeFile(join(dir.path, 'nobody-yet'), 'z', { owner: 'pgplay-no-such-user' })).rejects.toThrow('user pgplay-no-such-user does not exist');
    }
    expect((await readFile(log, 'utf8')).trim().split('\n')).toEqual(['passwd pgplay-no-such-user', 'passwd pgplay-no-such-user']);
  });
});
