import { execa } from 'execa';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityArgv, parseControl, parseIdentities } from '../../src/postgres/identity.js';
import { maySameMachine, within } from '../../src/postgres/same-directory.js';

/** The identity script run for real by sh (no pg_controldata in this bindir: the raw pg_control read). */
async function identities(paths: string[]) {
  const [cmd, ...args] = identityArgv('/nonexistent/bin', paths);
  const r = await execa(cmd!, args, { reject: false });
  return parseIdentities(r.stdout, paths);
}

describe('directory identity', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-identity-'));
    const pgdata = join(dir, 'data');
    await mkdir(join(pgdata, 'global'), { recursive: true });
    await writeFile(join(pgdata, 'PG_VERSION'), '15\n');
    // A pg_control whose first fields are a system identifier, then (offset 16) state 1 "shut down"
    // and (offset 48) timeline 3: the offsets the raw read relies on.
    const control = Buffer.alloc(8192);
    control.writeBigUInt64LE(7312345678901234567n, 0);
    control.writeUInt32LE(1, 16);
    control.writeUInt32LE(3, 48);
    await writeFile(join(pgdata, 'global', 'pg_control'), control);
    await writeFile(join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n`);
    await symlink(pgdata, join(dir, 'alias'));
    await writeFile(join(dir, 'file'), 'x');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads a cluster without pg_controldata, sees a live postmaster, and gives a link the same key as its target', async () => {
    const [data, alias, parent] = await identities([join(dir, 'data'), join(dir, 'alias'), dir]);
    expect(data).toMatchObject({
      known: true,
      exists: true,
      directory: true,
      real: join(dir, 'data'),
      pgVersion: 15,
      control: true,
      systemIdentifier: '7312345678901234567',
      clusterState: 'shut down',
      running: true,
      pid: process.pid,
    });
    expect(data!.key).toMatch(/^.+:\d+:\d+$/);
    expect(alias!.key).toBe(data!.key);
    expect(alias!.real).toBe(join(dir, 'data'));
    expect(parent!.key).not.toBe(data!.key);
    expect(parent).toMatchObject({ control: false, running: false });
    expect(parent!.systemIdentifier).toBeUndefined();
  });

  it('tells a missing path and a file from a directory; an incomplete answer is unknown, never "missing"', async () => {
    const [missing, file] = await identities([join(dir, 'nope'), join(dir, 'file')]);
    expect(missing).toMatchObject({ known: true, exists: false, directory: false });
    expect(file).toMatchObject({ known: true, exists: true, directory: false });
    expect(parseIdentities('pgplay-identity 1\n1.exists=0\n', ['/x'])[0]).toMatchObject({ known: false, error: expect.stringContaining('no complete answer') });
    expect(parseIdentities('pgplay-identity 1\n1.error=stat: Permission denied\nend=1\n', ['/x'])[0]).toMatchObject({ known: false, error: 'stat: Permission denied' });
  });

  it('parses pg_controldata lines and the raw state code alike', () => {
    const lines = new Map([['control.system_identifier', '42'], ['control.state', 'in production'], ['control.timeline', '2']]);
    expect(parseControl((k) => lines.get(k))).toEqual({ systemIdentifier: '42', state: 'in production', timeline: 2 });
    const raw = new Map([['control.system_identifier', '0'], ['control.state_code', '5']]);
    expect(parseControl((k) => raw.get(k))).toEqual({ state: 'in archive recovery' });
  });

  it('knows which hosts may be one machine, and which paths nest', () => {
    const local = { address: '127.0.0.1', connection: { transport: 'local' as const } };
    expect(maySameMachine(local, { address: '127.0.0.2', connection: { transport: 'local' } })).toBe(true);
    expect(maySameMachine({ address: '10.0.0.1', connection: { transport: 'ssh' } }, { address: '10.0.0.1', connection: { transport: 'ssh' } })).toBe(true);
    expect(maySameMachine({ address: '10.0.0.1', connection: { transport: 'ssh' } }, { address: '10.0.0.2', connection: { transport: 'ssh' } })).toBe(false);
    expect(within('/a/b', '/a')).toBe(true);
    expect(within('/a', '/a')).toBe(true);
    expect(within('/ab', '/a')).toBe(false);
  });
});
