import { execa } from 'execa';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, labUp, results, waitGone, type TestLab } from './lab-helpers.js';

describe('nightly-backup.yml on the lab (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;

  beforeAll(async () => {
    lab = await createLab(26010, 'backup');
    await labUp(lab);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('first run: archiving checked, stanza in place, a full backup, verify, globals beside the repository', async () => {
    const r = await lab.run('nightly-backup.yml');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const res = results(r.events);
    expect(res).toContain('pgbackrest/stanza@bk1=ok');
    expect(res).toContain('pgbackrest/check@bk1=ok');
    expect(res).toContain('pgbackrest/backup-full@bk1=changed');
    expect(res).toContain('pgbackrest/backup-changes@bk1=skipped');
    expect(res).toContain('pgbackrest/verify@bk1=ok');
    // pgBackRest is checked on the primary (its archive_command) and on the backup host at the same time:
    // one step on both, not one step after the other; then the backup host's pg_dumpall.
    const started = (id: string) => r.events.find((e) => e.type === 'step-start' && e.step === id)?.hosts;
    expect(started('pgbackrest-tools/pgbackrest')).toEqual(['db1', 'db2', 'bk1']);
    expect(res).toEqual(expect.arrayContaining(['pgbackrest-tools/pgbackrest@db1=ok', 'pgbackrest-tools/pgbackrest@db2=skipped', 'pgbackrest-tools/pgbackrest@bk1=ok']));
    expect(started('pgbackrest-tools/pg-dumpall')).toEqual(['bk1']);
    expect(res).toContain('pgbackrest-tools/pg-dumpall@bk1=ok');
    const info = await lab.pgbackrestInfo();
    expect(info.status).toMatchObject({ code: 0, message: 'ok' });
    expect(info.backup.map((b) => b.type)).toEqual(['full']);

    const globalsDir = join(lab.dir, 'bk1', 'globals');
    const files = (await readdir(globalsDir)).filter((f) => /^globals-\d{8}T\d{6}Z\.sql$/.test(f));
    expect(files).toHaveLength(1);
    const dump = join(globalsDir, files[0]!);
    expect((await stat(dump)).mode & 0o777).toBe(0o600);
    expect(await readFile(dump, 'utf8')).toMatch(/CREATE ROLE replicator;\nALTER ROLE replicator WITH .*REPLICATION/);
  });

  it('type=incr adds an incremental on top of the full backup', async () => {
    const r = await lab.run('nightly-backup.yml', ['-p', 'type=incr']);
    expect(r.exitCode).toBe(0);
    // The type is asked for: the repository is not read for auto's decision (pgbackrest info once less).
    expect(results(r.events)).toEqual(expect.arrayContaining(['pgbackrest/repository@bk1=skipped', 'pgbackrest/backup-changes@bk1=changed']));
    const info = await lab.pgbackrestInfo();
    expect(info.backup.map((b) => b.type)).toEqual(['full', 'incr']);
    expect(info.backup[1]!.prior).toBe(info.backup[0]!.label);
  });

  it('a second run changes only what always changes: the backup itself and the globals export', async () => {
    // auto: the full backup is younger than full_every days, so this one is incremental.
    const r = await lab.run('nightly-backup.yml');
    expect(r.exitCode).toBe(0);
    expect(changedSteps(r.events)).toEqual(['pgbackrest/backup-changes@bk1', 'globals@bk1']);
    expect(results(r.events)).toContain('pgbackrest/repository@bk1=ok');
    expect((await lab.pgbackrestInfo()).backup.map((b) => b.type)).toEqual(['full', 'incr', 'incr']);
  });

  it('retention: with repo1-retention-full=2 the third full backup expires the first and what depends on it; globals pruned to globals_keep', async () => {
    const before = await lab.pgbackrestInfo();
    const firstFull = before.backup[0]!.label;
    for (let i = 0; i < 2; i++) {
      // The last run also prunes the globals exports to globals_keep.
      const r = await lab.run('nightly-backup.yml', ['-p', 'type=full', ...(i === 1 ? ['-p', 'globals_keep=2'] : [])]);
      expect(r.exitCode).toBe(0);
      expect(results(r.events)).toContain('pgbackrest/backup-full@bk1=changed');
    }
    expect((await readdir(join(lab.dir, 'bk1', 'globals'))).filter((f) => f.endsWith('.sql'))).toHaveLength(2);
    const after = await lab.pgbackrestInfo();
    expect(after.backup.map((b) => b.type)).toEqual(['full', 'full']);
    expect(after.backup.map((b) => b.label)).not.toContain(firstFull);
    const fresh = await lab.run('nightly-backup.yml', ['-p', 'full_every=1']);
    expect(results(fresh.events)).toContain('pgbackrest/backup-changes@bk1=changed');
  });

  it('refuses (exit 3) when the inventory primary is not running, and lab up brings it back', async () => {
    const pid = (await lab.postmasterPid('db1'))!;
    await execa('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-D', lab.pgdata('db1'), '-m', 'fast', '-w'], { cwd: '/' });
    expect(await waitGone(pid)).toBe(true);
    const r = await lab.run('nightly-backup.yml');
    expect(r.exitCode).toBe(3);
    const end = r.events.at(-1)!;
    expect(end.error!.code).toBe('GUARD');
    expect(end.error!.message).toContain("db1 is the inventory's primary but PostgreSQL is not running there: nothing to back up from.");
    expect(changedSteps(r.events)).toEqual([]);
    await labUp(lab);
    expect(await lab.psql('db1', 'SELECT count(*) FROM accounts', 'app')).toBe('1000');
  });
});
