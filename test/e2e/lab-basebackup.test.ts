/**
 * The basebackup engine (backup.tool basebackup, issue 13 items 1 and 3) on the lab (ports 29600-29602):
 * pg_basebackup in tar format with its manifest verified, a WAL archive kept by pgplay-wal, a standby
 * restored from the repository, a point-in-time drill to a restore point, the archive command's
 * refusal to overwrite a segment, and retention of backups and WAL. One lab for the whole file:
 *
 *   B1 | standby db2 from B1 | lost (25 rows) | restore point before-drop | DROP TABLE lost | B2 | drill | B3 (B1 and its WAL go)
 *
 * The restore point lies between B1 and B2: only B1 ended before it, so the drill must choose B1. Then restore.yml
 * in place on db1, switchover.yml to db2 (db1 its standby, with pgplay-wal fetch as restore_command; a base
 * backup of db2's timeline) and promote.yml back to db1.
 */
import { execa } from 'execa';
import { mkdtemp, readdir, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { changedSteps, createLab, events, eventually, results, type TestLab } from './lab-helpers.js';

const BACKUP = /^base-\d{8}T\d{6}Z$/;

describe('the lab with backup.tool basebackup: pg_basebackup with a WAL archive (PostgreSQL 15)', () => {
  let lab: TestLab;
  const repo = () => join(lab.dir, 'bk1', 'repo');
  const backups = async () => (await readdir(repo())).filter((f) => BACKUP.test(f)).sort();
  const archived = async () => (await readdir(join(repo(), 'wal'))).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort();
  const asPostgres = (argv: string[]) => execa('runuser', ['-u', 'postgres', '--', ...argv], { reject: false, cwd: '/' });

  /** Backup directory names have a one-second resolution: the next backup starts in a later second (the clock polled, no fixed sleep). */
  const nightly = async () => {
    const newest = (await backups()).at(-1);
    if (newest) {
      const label = () => `base-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}Z`;
      await eventually(async () => label(), (l) => l > newest, 5_000);
    }
    const r = await lab.run('nightly-backup.yml');
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    return r;
  };

  /** The first WAL segment of a backup, from the backup_label inside its base.tar.gz. */
  const startSegment = async (label: string) => {
    const r = await execa('tar', ['-x', '-z', '-O', '-f', join(repo(), label, 'base.tar.gz'), 'backup_label']);
    return /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(r.stdout)![1]!;
  };

  beforeAll(async () => {
    lab = await createLab(29600, 'basebackup');
    const up = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--base-port', '29600', '--backup-tool', 'basebackup']);
    if (up.exitCode !== 0) throw new Error(`lab up failed: ${up.stdout.slice(-2000)}${up.stderr}`);
  }, 300_000);

  afterAll(async () => {
    await lab?.down();
  });

  it('lab up turns archiving on into the repository through pgplay-wal; no pgBackRest files', async () => {
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.backup.tool).toBe('basebackup');
    expect(await lab.psql('db1', "SELECT current_setting('archive_mode')")).toBe('on');
    expect(await lab.psql('db1', "SELECT current_setting('archive_command')")).toBe(`${repo()}/bin/pgplay-wal push ${repo()}/wal %p %f`);
    expect((await stat(join(repo(), 'bin', 'pgplay-wal'))).mode & 0o777).toBe(0o755);
    await expect(stat(join(lab.dir, 'db1', 'pgbackrest.conf'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a pg_basebackup older than the server: the plan takes the copy method and says why; with a tablespace neither serves (exit 3, nothing changed)', async () => {
    // The repository host's bindir with a pg_basebackup from PostgreSQL 11 (a stand-in answering --version as
    // 11.22 does, failing any real use), the other tools Debian's 15.
    const scratch = await mkdtemp(join(tmpdir(), 'pgplay-old-basebackup-'));
    try {
      await chmod(scratch, 0o755);
      const bindir = join(scratch, 'bin');
      await execa('mkdir', ['-m', '0755', bindir]);
      await writeFile(join(bindir, 'pg_basebackup'), "#!/bin/sh\ncase \"$1\" in --version|-V) echo 'pg_basebackup (PostgreSQL) 11.22'; exit 0;; esac\necho 'incompatible server version 15' >&2; exit 1\n", { mode: 0o755 });
      for (const tool of ['pg_verifybackup', 'pg_archivecleanup', 'pg_dumpall']) await execa('ln', ['-s', `/usr/lib/postgresql/15/bin/${tool}`, join(bindir, tool)]);
      const inv = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8')) as Record<string, any>;
      inv.hosts.bk1.postgres = { ...(inv.hosts.bk1.postgres ?? {}), bindir };
      const inventory = join(scratch, 'inventory.yml');
      await writeFile(inventory, stringify(inv));

      const plan = await lab.pgplay(['plan', 'nightly-backup.yml', '-i', inventory, '--output', 'json']);
      expect(plan.exitCode, plan.stdout.slice(-3000)).toBe(0);
      const planned = events(plan.stdout);
      expect(results(planned)).toEqual(expect.arrayContaining(['basebackup/basebackup@bk1=skipped', 'basebackup/copy@bk1=changed']));
      const msg = (step: string) => planned.find((e) => e.type === 'step-result' && e.step === step)?.msg ?? '';
      expect(msg('tools-basebackup-host')).toMatch(/pg_basebackup on bk1 is from PostgreSQL 11\.22, the server runs 15.*: the base backup is taken with the copy method/);
      expect(msg('basebackup/copy')).toMatch(/would copy db1 into .* with the low-level backup API .*: pg_basebackup on bk1 is from PostgreSQL 11\.22/);

      // A tablespace: the copy method copies PGDATA only, so neither way can take the backup.
      const location = join(scratch, 'ts');
      await execa('install', ['-d', '-o', 'postgres', '-m', '0700', location]);
      await lab.psql('db1', `CREATE TABLESPACE ts_refuse LOCATION '${location}'`);
      try {
        const r = await lab.run('nightly-backup.yml', ['-i', inventory, '--yes']);
        expect(r.exitCode, r.stdout.slice(-3000)).toBe(3);
        expect(results(r.events)).toContain('some-method-serves@db1=failed');
        expect(r.events.findLast((e) => e.type === 'run-end')!.error!.message).toMatch(
          /no way to take a base backup of db1: pg_basebackup on bk1 is from PostgreSQL 11\.22, the server runs 15.*not the tablespaces ts_refuse/,
        );
        expect(changedSteps(r.events)).toEqual([]);
      } finally {
        await lab.psql('db1', 'DROP TABLESPACE ts_refuse');
      }
      expect(await backups()).toEqual([]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('nightly-backup takes a tar pg_basebackup, verifies its manifest with pg_verifybackup, and the WAL reaches the archive', async () => {
    const r = await nightly();
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['basebackup/basebackup@bk1=changed', 'basebackup/verify@bk1=ok', 'globals@bk1=changed']),
    );
    // pgBackRest's steps (include/backup/pgbackrest/) are not entered with backup.tool basebackup.
    expect(results(r.events).filter((x) => x.startsWith('pgbackrest'))).toEqual([]);
    // basebackup/verify is ok only when pg_verifybackup exited 0 (it exits non-zero on any file or WAL problem).
    const [b1] = await backups();
    expect(b1).toBeDefined();
    expect((await readdir(join(repo(), b1!))).sort()).toEqual(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz']);
    // The scratch copy pg_verifybackup read is gone.
    expect((await readdir(repo())).filter((f) => f.endsWith('.verify') || f.endsWith('.partial'))).toEqual([]);
    // The backup's own first segment was archived (the primary archives since lab up).
    const first = await startSegment(b1!);
    const wal = await eventually(archived, (w) => w.includes(first));
    expect(wal).toContain(first);
  });

  it('standby-from-backup restores db2 from the repository; it replays the archive and streams; a second run changes nothing', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['build/restore-base@db2=changed', 'build/recovery@db2=changed', 'build/streaming@db1=ok']));
    expect(results(r.events).filter((x) => x.startsWith('build/pgbackrest/'))).toEqual([]);
    expect(await lab.psql('db1', 'SELECT application_name, state FROM pg_stat_replication')).toBe('db2|streaming');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.psql('db2', "SELECT current_setting('restore_command')")).toBe(`${repo()}/bin/pgplay-wal fetch ${repo()}/wal %f "%p"`);
    const again = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(again.exitCode).toBe(0);
    expect(changedSteps(again.events)).toEqual([]);
  });

  it('pitr-drill to a restore point brings a dropped table back from the backup that ended before it (PASSED)', async () => {
    const [b1] = await backups();
    await lab.psql('db1', 'CREATE TABLE lost (id int PRIMARY KEY); INSERT INTO lost SELECT generate_series(1, 25)');
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    await lab.psql('db1', 'DROP TABLE lost');
    await nightly();
    const [, b2] = await backups();
    expect(b2).toBeDefined();

    const reportFile = join(lab.dir, 'drill.json');
    const checks = JSON.stringify([{ sql: 'SELECT count(*) FROM lost', expect: '25' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${checks}`, '--report', reportFile, '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['restore-base@drill1=changed', 'recovery-name@drill1=changed', 'verdict@drill1=ok']));
    expect(results(r.events).filter((x) => x.startsWith('pgbackrest'))).toEqual([]);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', target_reached: true, teardown: 'removed', backup: { set: b1 } });
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['25:true']);
    expect(report.backup.reason).toContain('restore point "before-drop" created at');
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(report.archive.reached_repository).toBe(true);
    // Production was only read: the primary still writes, the standby still follows, the copy is gone.
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.tryPsql('db1', 'SELECT count(*) FROM lost')).toMatchObject({ exitCode: 1 });
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('the archive command never overwrites an archived segment with other content (exit 1, original kept); the same content is success', async () => {
    const segment = (await archived())[0]!;
    const target = join(repo(), 'wal', segment);
    const original = await readFile(target);
    const scratch = await mkdtemp(join(tmpdir(), 'pgplay-wal-'));
    try {
      await chmod(scratch, 0o755);
      const other = join(scratch, 'other');
      await writeFile(other, Buffer.alloc(original.length, 7));
      await chmod(other, 0o644);
      const refused = await asPostgres([join(repo(), 'bin', 'pgplay-wal'), 'push', join(repo(), 'wal'), other, segment]);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(`refusing to overwrite ${target}`);
      expect((await readFile(target)).equals(original)).toBe(true);

      const same = join(scratch, 'same');
      await writeFile(same, original);
      await chmod(same, 0o644);
      const again = await asPostgres([join(repo(), 'bin', 'pgplay-wal'), 'push', join(repo(), 'wal'), same, segment]);
      expect(again.exitCode).toBe(0);
      expect((await readFile(target)).equals(original)).toBe(true);
      // No temporary file is left behind in the archive.
      expect((await readdir(join(repo(), 'wal'))).filter((f) => f.startsWith('.'))).toEqual([]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('retention keeps retention.full (2) backups and removes the WAL older than the oldest kept one', async () => {
    const [b1, b2] = await backups();
    const b1Start = await startSegment(b1!);
    const b2Start = await startSegment(b2!);
    expect(await archived()).toContain(b1Start);
    const r = await nightly();
    expect(results(r.events)).toContain('basebackup/retention@bk1=changed');
    const kept = await backups();
    expect(kept).toHaveLength(3 - 1);
    expect(kept[0]).toBe(b2);
    expect(kept).not.toContain(b1);
    const wal = await archived();
    expect(wal).not.toContain(b1Start);
    expect(wal[0]! >= b2Start).toBe(true);
    expect(wal).toContain(b2Start);
  });

  /** START TIMELINE of a backup's backup_label: the timeline it was taken on. */
  const backupTimeline = async (label: string) => {
    const r = await execa('tar', ['-x', '-z', '-O', '-f', join(repo(), label, 'base.tar.gz'), 'backup_label']);
    return Number(/^START TIMELINE: (\d+)$/m.exec(r.stdout)![1]);
  };
  const timelineOf = async (host: 'db1' | 'db2') => Number(await lab.psql(host, 'SELECT timeline_id FROM pg_control_checkpoint()'));

  it('restore.yml in place on db1 to a restore point: a base backup and the WAL archive bring a dropped table back on a new timeline; a new base backup; db2 follows', async () => {
    const systemId = () => lab.psql('db1', 'SELECT system_identifier::text FROM pg_control_system()');
    const sysid = await systemId();
    const oldTimeline = await timelineOf('db1');
    await lab.psql('db1', 'CREATE TABLE kept (id int); INSERT INTO kept SELECT generate_series(1, 42)');
    await lab.psql('db1', "SELECT pg_create_restore_point('before-restore-drop')");
    await lab.psql('db1', 'DROP TABLE kept');
    const wal = await lab.psql('db1', 'SELECT pg_walfile_name(pg_current_wal_lsn()) FROM pg_switch_wal()');
    await eventually(archived, (w) => w.some((s) => s >= wal));
    const newest = (await backups()).at(-1)!;

    // A timeline choice this engine cannot serve: refused before anything changes.
    const pid = await lab.postmasterPid('db1');
    const refused = await lab.run('restore.yml', ['-p', 'host=db1', '-p', 'in_place=confirmed', '-p', 'target=name', '-p', 'target_value=before-restore-drop', '-p', 'target_timeline=1', '--yes']);
    expect(refused.exitCode, refused.stdout.slice(-3000)).toBe(3);
    expect(refused.events.findLast((e) => e.type === 'run-end')!.error!.message).toContain('target_timeline 1 is not supported with backup.tool basebackup');
    expect(changedSteps(refused.events)).toEqual([]);
    expect(await lab.postmasterPid('db1')).toBe(pid);

    const r = await lab.run('restore.yml', ['-p', 'host=db1', '-p', 'in_place=confirmed', '-p', 'target=name', '-p', 'target_value=before-restore-drop', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['restore-base/restore@db1=changed', 'restore-base/recovery/name@db1=changed', 'basebackup-follows/backup/basebackup@bk1=changed']),
    );
    // pgBackRest's steps (include/backup/pgbackrest/, skipped as a whole) never ran.
    expect(results(r.events).filter((e) => /(^|\/)pgbackrest/.test(e) && !e.endsWith('=skipped'))).toEqual([]);
    expect(await lab.psql('db1', 'SELECT count(*) FROM kept')).toBe('42');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await systemId()).toBe(sysid);
    const timeline = await timelineOf('db1');
    expect(timeline).toBeGreaterThan(oldTimeline);
    // A new base backup of the new timeline; the restored primary archives into the repository.
    const latest = (await backups()).at(-1)!;
    expect(latest > newest).toBe(true);
    expect(await backupTimeline(latest)).toBe(timeline);
    expect(await lab.psql('db1', "SELECT current_setting('archive_command')")).toBe(`${repo()}/bin/pgplay-wal push ${repo()}/wal %p %f`);
    // db2 rebuilt from it, streaming from db1 on the new timeline.
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => lab.psql('db2', 'SELECT received_tli FROM pg_stat_wal_receiver'), (v) => v === String(timeline))).toBe(String(timeline));
  });

  it('switchover.yml with the basebackup engine: db2 archives into the repository and is backed up on its new timeline; db1 streams from it with pgplay-wal fetch as restore_command', async () => {
    const newest = (await backups()).at(-1)!;
    const r = await lab.run('switchover.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['cutover/promote@db2=changed', 'backup/basebackup/archived@db2=ok', 'backup/basebackup/backup/basebackup@bk1=changed', 'backup/basebackup/backup/verify@bk1=ok']),
    );
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    const timeline = await timelineOf('db2');
    expect(await lab.psql('db2', "SELECT current_setting('archive_command')")).toBe(`${repo()}/bin/pgplay-wal push ${repo()}/wal %p %f`);
    // A base backup of db2's new timeline, and its timeline history in the archive.
    const latest = (await backups()).at(-1)!;
    expect(latest > newest).toBe(true);
    expect(await backupTimeline(latest)).toBe(timeline);
    const history = `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
    expect((await readdir(join(repo(), 'wal'))).includes(history)).toBe(true);

    // db1 streams from db2 on the new timeline and fetches what streaming lacks from the repository.
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => lab.psql('db1', "SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver"), (v) => v === `streaming ${timeline}`)).toBe(`streaming ${timeline}`);
    const restoreCommand = await lab.psql('db1', "SELECT current_setting('restore_command')");
    expect(restoreCommand).toBe(`${repo()}/bin/pgplay-wal fetch ${repo()}/wal %f "%p"`);
    const scratch = await mkdtemp(join(tmpdir(), 'pgplay-restore-command-'));
    await chmod(scratch, 0o777);
    const fetched = await asPostgres(['sh', '-c', restoreCommand.replace('%f', history).replace('%p', join(scratch, history))]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(await readFile(join(scratch, history), 'utf8')).toBe(await readFile(join(repo(), 'wal', history), 'utf8'));
    await rm(scratch, { recursive: true, force: true });

    // The DBA's inventory after the switchover: db2 the primary, db1 its standby.
    const file = join(lab.dir, 'inventory.yml');
    const inventory = parse(await readFile(file, 'utf8'));
    inventory.hosts.db2.role = 'primary';
    delete inventory.hosts.db2.upstream;
    inventory.hosts.db1 = { ...inventory.hosts.db1, role: 'standby', upstream: 'db2' };
    await writeFile(file, stringify(inventory));
  });

  it('promote works with the basebackup engine: the new primary archives into the repository and is backed up on its new timeline', async () => {
    // db2 is the primary since the switchover; db1 is promoted.
    const newest = (await backups()).at(-1)!;
    const r = await lab.run('promote.yml', ['-p', 'candidate=db1', '--yes']);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['promote@db1=changed', 'basebackup-follows/archived@db1=ok', 'basebackup-follows/backup/basebackup@bk1=changed', 'basebackup-follows/backup/verify@bk1=ok']),
    );
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.postmasterPid('db2')).toBeUndefined();
    const timeline = await timelineOf('db1');
    const latest = (await backups()).at(-1)!;
    expect(latest > newest).toBe(true);
    expect(await backupTimeline(latest)).toBe(timeline);
    // db1's timeline history reached the archive: a recovery across the switch can follow it.
    expect((await readdir(join(repo(), 'wal'))).includes(`${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`)).toBe(true);
  });
});
