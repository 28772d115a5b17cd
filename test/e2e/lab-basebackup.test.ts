import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, results, type TestLab } from './lab-helpers.js';

/** The lab and the procedures without pgBackRest: pg_basebackup backups and standbys, streaming only. */
describe('the lab with backup.tool basebackup (PostgreSQL 15)', () => {
  let lab: TestLab;
  const backups = async () => (await readdir(join(lab.dir, 'bk1', 'repo'))).filter((f) => /^base-\d{8}T\d{6}Z$/.test(f)).sort();

  beforeAll(async () => {
    lab = await createLab(56040, 'basebackup');
    const up = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--base-port', '56040', '--backup-tool', 'basebackup']);
    if (up.exitCode !== 0) throw new Error(`lab up failed: ${up.stdout.slice(-2000)}${up.stderr}`);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('builds the lab without pgBackRest: no archiving, no pgBackRest files', async () => {
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.backup.tool).toBe('basebackup');
    expect(await lab.psql('db1', "SELECT current_setting('archive_mode')")).toBe('off');
    await expect(stat(join(lab.dir, 'db1', 'pgbackrest.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('nightly-backup takes compressed pg_basebackups and keeps retention.full of them', async () => {
    for (let i = 1; i <= 3; i++) {
      const r = await lab.run('nightly-backup.yml');
      expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
      expect(results(r.events)).toEqual(expect.arrayContaining(['basebackup@bk1=changed', 'stanza@bk1=skipped', 'globals@bk1=changed']));
      // Backup directory names have a one-second resolution.
      await new Promise((res) => setTimeout(res, 1100));
    }
    const kept = await backups();
    expect(kept).toHaveLength(2);
    const files = await readdir(join(lab.dir, 'bk1', 'repo', kept[1]!));
    expect(files.sort()).toEqual(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz']);
    expect((await stat(join(lab.dir, 'bk1', 'repo', kept[1]!))).mode & 0o777).toBe(0o700);
  });

  it('standby-from-backup copies db2 with pg_basebackup and it streams; a second run changes nothing', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['build/basebackup@db2=changed', 'build/restore@db2=skipped', 'build/streaming@db1=ok']));
    expect(await lab.psql('db1', 'SELECT application_name, state FROM pg_stat_replication')).toBe('db2|streaming');
    const again = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(again.exitCode).toBe(0);
    expect(changedSteps(again.events)).toEqual([]);
  });

  it('pitr-drill refuses (exit 3): point-in-time recovery needs the WAL archive', async () => {
    const r = await lab.run('pitr-drill.yml', ['--yes']);
    expect(r.exitCode).toBe(3);
    expect(r.events.at(-1)!.error!.message).toContain('the inventory\'s backup.tool is basebackup; a point-in-time drill replays the pgBackRest WAL archive');
  });

  it('promote works without pgBackRest', async () => {
    const r = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['promote@db2=changed', 'backup@bk1=skipped']));
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.postmasterPid('db1')).toBeUndefined();
  });
});
