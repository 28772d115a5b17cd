import { readFileSync } from 'node:fs';
import { chmod, chown, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryIn, firstSourceIsFiles, LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir } from './support/action-context.js';

// getent found first on PATH: a shim that logs its arguments and runs the real one.
let dir: { path: string; cleanup(): Promise<void> };
let log: string;
const path = process.env.PATH;
/** A user and a group only the name service knows (the shim below), as a directory server's would be. */
const NSS_USER = 'pgplay-nss-user';
const NSS_UID = 64991;
const NSS_GROUP = 'pgplay-nss-group';
const NSS_GID = 64992;
const filesFirst = (db: string) => firstSourceIsFiles(readFileSync('/etc/nsswitch.conf', 'utf8'), db);
beforeAll(async () => {
  dir = await tempDir('local-ids');
  log = join(dir.path, 'getent.log');
  await writeFile(log, '');
  const shim = join(dir.path, 'getent');
  // It also knows a user and a group that are not in /etc/passwd nor /etc/group, as LDAP or sssd would.
  await writeFile(
    shim,
    `#!/bin/sh\necho "$*" >> ${log}\ncase "$*" in\n` +
      `'passwd ${NSS_UID}'|'passwd ${NSS_USER}') echo '${NSS_USER}:x:${NSS_UID}:${NSS_GID}::/nonexistent:/usr/sbin/nologin' ;;\n` +
      `'group ${NSS_GID}'|'group ${NSS_GROUP}') echo '${NSS_GROUP}:x:${NSS_GID}:' ;;\n` +
      `*) exec /usr/bin/getent "$@" ;;\nesac\n`,
  );
  await chmod(shim, 0o755);
  process.env.PATH = `${dir.path}:${path}`;
});
afterAll(async () => {
  process.env.PATH = path;
  await dir.cleanup();
});

describe('user and group lookups of the local transport', () => {
  it('are cached for the machine: hosts on this machine ask getent once per uid and gid the local files do not hold', async () => {
    const file = join(dir.path, 'owned');
    const nss = join(dir.path, 'owned-nss');
    await writeFile(file, 'x');
    await writeFile(nss, 'x');
    await chown(file, 101, 104);
    await chown(nss, NSS_UID, NSS_GID);
    const stats = [];
    for (const name of ['db1', 'db2', 'db3']) {
      const transport = new LocalTransport(localHost({ name }));
      stats.push(await transport.stat(file), await transport.stat(nss));
      // Writing as postgres:postgres resolves the names the other way.
      await transport.writeFile(join(dir.path, `${name}.conf`), 'y', { owner: 'postgres', group: 'postgres', mode: 0o640 });
      await transport.writeFile(join(dir.path, `${name}-nss.conf`), 'y', { owner: NSS_USER, group: NSS_GROUP, mode: 0o640 });
      expect((await stat(join(dir.path, `${name}-nss.conf`))).uid).toBe(NSS_UID);
    }
    expect(stats.map((s) => `${s.owner}:${s.group}`)).toEqual(Array(3).fill(['postgres:postgres', `${NSS_USER}:${NSS_GROUP}`]).flat());
    // postgres is in /etc/passwd and /etc/group: where nsswitch.conf reads the files first, getent is not asked.
    const asked = [`group ${NSS_GID}`, `group ${NSS_GROUP}`, `passwd ${NSS_UID}`, `passwd ${NSS_USER}`];
    if (!filesFirst('passwd') || !filesFirst('group')) asked.push('group 104', 'group postgres', 'passwd 101', 'passwd postgres');
    expect((await readFile(log, 'utf8')).trim().split('\n').sort()).toEqual(asked.sort());
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

describe('which source nsswitch.conf asks first', () => {
  it('files first only when the database line begins with files', () => {
    const conf = '# passwd: ldap\npasswd:         files systemd\ngroup: sss files # sssd first\nshadow: files\n';
    expect(firstSourceIsFiles(conf, 'passwd')).toBe(true);
    expect(firstSourceIsFiles(conf, 'group')).toBe(false);
    expect(firstSourceIsFiles('passwd: compat\n', 'passwd')).toBe(false);
    expect(firstSourceIsFiles('passwd:files\n', 'passwd')).toBe(true);
    expect(firstSourceIsFiles('', 'passwd')).toBe(false);
  });
});

describe('an entry of /etc/passwd or /etc/group', () => {
  it('is the first line with that name, or that id for a number; comments and empty keys find nothing', () => {
    const passwd = '#postgres:x:1:1::/:/bin/false\nroot:x:0:0:root:/root:/bin/bash\npostgres:x:101:104::/var/lib/postgresql:/bin/bash\nalias:x:101:104::/:/bin/false\n\n';
    expect(entryIn(passwd, 'postgres')?.slice(0, 4)).toEqual(['postgres', 'x', '101', '104']);
    expect(entryIn(passwd, '101')?.[0]).toBe('postgres');
    expect(entryIn(passwd, '1')).toBeUndefined();
    expect(entryIn(passwd, '')).toBeUndefined();
    expect(entryIn(passwd, 'nobody')).toBeUndefined();
    expect(entryIn('postgres:x:104:\n', 'postgres')).toEqual(['postgres', 'x', '104', '']);
  });
});
