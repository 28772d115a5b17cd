/**
 * What counts as user data in a PGDATA (postgres/user-data.ts), read from files by a real shell: a
 * freshly created cluster has nothing at or above OID 16384; a database, a table or a tablespace does.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeUserData, holdsUserData, parseUserData, userDataArgv } from '../../src/postgres/user-data.js';

describe('user data in a PGDATA', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A PGDATA skeleton with the given files (relative paths). */
  async function pgdata(files: string[]): Promise<string> {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-user-data-'));
    for (const f of ['base/1/1259', 'base/4/1259', 'base/5/1259', 'base/5/16383', 'base/5/pg_filenode.map', ...files]) {
      await mkdir(join(dir, f, '..'), { recursive: true });
      await writeFile(join(dir, f), '');
    }
    await mkdir(join(dir, 'pg_tblspc'), { recursive: true });
    return dir;
  }

  const read = async (path: string) => {
    const [cmd, ...args] = userDataArgv(path);
    const r = await execa(cmd!, args, { reject: false });
    return { exitCode: r.exitCode, data: parseUserData(r.stdout) };
  };

  it('a freshly created cluster holds none', async () => {
    const r = await read(await pgdata([]));
    expect(r.exitCode).toBe(0);
    expect(holdsUserData(r.data)).toBe(false);
  });

  it('a table in postgres, a database and a tablespace are user data, and named', async () => {
    const path = await pgdata(['base/5/16384', 'base/5/16384_fsm', 'base/16390/1259']);
    await writeFile(join(path, 'pg_tblspc', '16400'), '');
    const r = await read(path);
    expect(r.data).toEqual({ databases: ['base/16390'], relations: ['base/5/16384'], tablespaces: ['16400'] });
    expect(holdsUserData(r.data)).toBe(true);
    expect(describeUserData(r.data)).toBe(
      '1 database made after initdb (base/16390), 1 table, index or sequence made after initdb (base/5/16384), 1 tablespace (pg_tblspc/16400)',
    );
  });

  it('a PGDATA that cannot be entered is an error, not "no user data"', async () => {
    const r = await read('/nonexistent/pgdata');
    expect(r.exitCode).toBe(2);
  });
});
