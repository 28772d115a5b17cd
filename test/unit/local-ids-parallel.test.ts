/**
 * A local stat names the owner and the group of a file: the first time on this machine, for ids the
 * local files do not hold, that is two getent lookups (local.ts caches them for the process), asked side by side, not one after the other.
 * Seen through a getent shim that waits (up to 2 s) for the other lookup to begin before answering:
 * lookups made in turn log begin, end, begin, end.
 */
import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir } from './support/action-context.js';

const asRoot = process.getuid?.() === 0;
let dir: { path: string; cleanup(): Promise<void> };
let log: string;
const path = process.env.PATH;
beforeAll(async () => {
  dir = await tempDir('local-ids-parallel');
  log = join(dir.path, 'getent.log');
  await writeFile(log, '');
  const shim = join(dir.path, 'getent');
  await writeFile(
    shim,
    `#!/bin/sh\necho "begin $1" >> ${log}\ni=0\nwhile [ "$(grep -c '^begin' ${log})" -lt 2 ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done\necho "end $1" >> ${log}\n` +
      // A user and a group that only the name service knows (not in /etc/passwd nor /etc/group): the
      // local files cannot answer for them, getent must.
      `case "$*" in 'passwd 64993') echo 'pgplay-nss-user:x:64993:64994::/:/bin/false' ;; 'group 64994') echo 'pgplay-nss-group:x:64994:' ;; *) exec /usr/bin/getent "$@" ;; esac\n`,
  );
  await chmod(shim, 0o755);
  process.env.PATH = `${dir.path}:${path}`;
});
afterAll(async () => {
  process.env.PATH = path;
  await dir.cleanup();
});

describe.runIf(asRoot)('a local stat', () => {
  it('asks for the owner\'s and the group\'s names at once', async () => {
    const file = join(dir.path, 'owned');
    await writeFile(file, 'x');
    await chown(file, 64993, 64994);
    const st = await new LocalTransport(localHost()).stat(file);
    expect(`${st.owner}:${st.group}`).toBe('pgplay-nss-user:pgplay-nss-group');
    const lines = (await readFile(log, 'utf8')).trim().split('\n');
    expect(lines.slice(0, 2).every((l) => l.startsWith('begin '))).toBe(true);
    expect(lines.sort()).toEqual(['begin group', 'begin passwd', 'end group', 'end passwd']);
  });
});
