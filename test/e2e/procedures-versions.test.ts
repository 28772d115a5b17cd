/**
 * Issue 12's proof on other majors, through the CLI on a lab as a user builds it (`pgplay lab up
 * --pg-version N --bindir DIR`). The servers are the embedded builds (initdb, pg_ctl, postgres); the
 * client tools beside them are Debian's 15 (psql, pg_basebackup, pg_dumpall), the only ones this
 * project's package sources carry. pgBackRest is Debian's 2.45. Ports 29500-29502 (11), 29510-29512 (17).
 *
 * PostgreSQL 11 (the recovery.conf world; pgBackRest 2.45 serves it): nightly backup, a drill to a
 * restore point that brings a dropped table back (archiving off in the copy, which pgBackRest cannot
 * do on 11), and a promotion with the old primary rebuilt as the new primary's standby.
 *
 * PostgreSQL 17: pgBackRest 2.45 cannot serve it (17 needs 2.53.1): with backup.tool pgbackrest the backup
 * and the drill refuse (exit 3) before any change, naming the tool and both versions. The lab's engine is
 * basebackup, and pg_basebackup 15 refuses a 17 server, so nightly-backup takes its base backups with the
 * copy method (pg_backup_start/pg_backup_stop and a file copy) and says so; from that backup a standby is
 * built, a drill reaches a restore point, and the standby is promoted with the old primary fenced.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { DrillReport } from '../../src/report/drill.js';
import { serverWithDebianClients } from '../support/embedded-pg.js';
import { changedSteps, createLab, eventually, results, type JsonEvent, type TestLab } from './lab-helpers.js';

async function labOn(major: number, basePort: number): Promise<TestLab> {
  const lab = await createLab(basePort, `versions-${major}`);
  const bindir = await serverWithDebianClients(major);
  const r = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--base-port', String(basePort), '--pg-version', String(major), '--bindir', bindir]);
  if (r.exitCode !== 0) {
    await lab.down().catch(() => undefined);
    throw new Error(`lab up on ${major} failed (${r.exitCode}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  }
  return lab;
}

function runEnd(events: JsonEvent[]): JsonEvent {
  return events.findLast((e) => e.type === 'run-end')!;
}

const IN_RECOVERY = 'SELECT pg_is_in_recovery()';

describe('PostgreSQL 11 with pgBackRest 2.45: drill and promotion', () => {
  let lab: TestLab;

  beforeAll(async () => {
    lab = await labOn(11, 29500);
    expect(await lab.psql('db1', 'SHOW server_version_num')).toMatch(/^11\d{4}$/);
    const backup = await lab.run('nightly-backup.yml', ['--yes']);
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-3000)}`);
    // The mistake to recover from: a row, a restore point, then the table is dropped.
    await lab.psql('db1', "CREATE TABLE pitr_demo (id int, note text); INSERT INTO pitr_demo VALUES (1, 'before the mistake')");
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    await lab.psql('db1', 'DROP TABLE pitr_demo');
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('a drill to a restore point brings the dropped table back in a copy that never archives (PASSED)', async () => {
    const reportFile = join(lab.dir, '..', 'drill.json');
    const checks = JSON.stringify([{ sql: 'SELECT note FROM pitr_demo', expect: 'before the mistake' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${checks}`, '-p', 'keep=true', '--report', reportFile, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', problems: [], target: { type: 'name', value: 'before-drop' }, target_reached: true, timeline: 2, teardown: 'kept' });
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['before the mistake:true']);

    // The kept copy: PostgreSQL 11, promoted, the table back, archiving off (pgplay's postgresql.auto.conf line).
    expect(await lab.psql('drill1', 'SHOW server_version_num')).toMatch(/^11\d{4}$/);
    expect(await lab.psql('drill1', IN_RECOVERY)).toBe('f');
    expect(await lab.psql('drill1', 'SELECT count(*) FROM pitr_demo')).toBe('1');
    expect(await lab.psql('drill1', "SELECT setting || ' ' || sourcefile FROM pg_settings WHERE name = 'archive_mode'")).toBe(`off ${join(lab.pgdata('drill1'), 'postgresql.auto.conf')}`);
    await stat(join(lab.pgdata('drill1'), 'recovery.done'));
    // Nothing of the copy's timeline 2 reached the repository; the primary still lacks the table.
    const archive = await readdir(join(lab.dir, 'bk1', 'repo', 'archive', 'lab', '11-1'));
    expect(archive.filter((f) => f.startsWith('00000002'))).toEqual([]);
    expect(await lab.psql('db1', "SELECT to_regclass('public.pitr_demo') IS NULL")).toBe('t');
  });

  it('promotion: a delayed standby is refused (its recovery.conf read), then the standby is promoted and the old primary follows it', async () => {
    const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(standby.exitCode, standby.stdout.slice(-3000)).toBe(0);
    expect(await lab.psql('db2', IN_RECOVERY)).toBe('t');

    // On 11 recovery_min_apply_delay is a recovery.conf line, not a setting SQL can show.
    const recoveryConf = join(lab.pgdata('db2'), 'recovery.conf');
    const conf = await readFile(recoveryConf, 'utf8');
    await writeFile(recoveryConf, `${conf}recovery_min_apply_delay = '1h'\n`);
    const delayed = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(delayed.exitCode, delayed.stdout.slice(-3000)).toBe(3);
    expect(results(delayed.events)).toContain('candidate-not-delayed@db2=failed');
    expect(runEnd(delayed.events).error!.message).toContain('db2 replays with recovery_min_apply_delay = 1h');
    expect(changedSteps(delayed.events)).toEqual([]);
    await writeFile(recoveryConf, conf);

    await lab.psql('db1', "CREATE TABLE before_promotion AS SELECT 'written on 11' AS note");
    const r = await lab.run('promote.yml', ['-p', 'candidate=db2', '-p', 'rebuild_old_primary=true', '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['apply-delay@db2=ok', 'candidate-not-delayed@db2=ok', 'promote@db2=changed']));
    expect(await lab.psql('db2', IN_RECOVERY)).toBe('f');
    expect(await lab.psql('db1', IN_RECOVERY)).toBe('t');
    expect(await lab.psql('db2', 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    expect(await lab.psql('db2', 'SELECT note FROM before_promotion')).toBe('written on 11');
    // db1 streams from db2 on the new timeline: a row written on db2 reaches it.
    expect(await lab.psql('db2', "SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication")).toBe('db1:streaming');
    await lab.psql('db2', "CREATE TABLE after_promotion AS SELECT 'written on db2' AS note");
    expect(await eventually(() => lab.tryPsql('db1', 'SELECT note FROM after_promotion'), (x) => x.stdout === 'written on db2')).toMatchObject({ stdout: 'written on db2' });
    // The new full backup on the new timeline.
    const info = await lab.pgbackrestInfo();
    expect(info.backup.at(-1)!.type).toBe('full');
    expect(info.backup.at(-1)!.archive.start.startsWith('00000002')).toBe(true);
  });
});

describe('PostgreSQL 17 with the basebackup engine (Debian\'s pgBackRest 2.45 and 15 client tools cannot serve it): backup, standby, drill, promotion', () => {
  let lab: TestLab;
  let inventory: string;

  beforeAll(async () => {
    lab = await labOn(17, 29510);
    expect(await lab.psql('db1', 'SHOW server_version_num')).toMatch(/^17\d{4}$/);
    // The lab chose the basebackup engine (pgBackRest 2.45 cannot serve 17); the same cluster with
    // backup.tool pgbackrest is what an inventory written for the repository host would say.
    const inv = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8')) as Record<string, any>;
    expect(inv.backup.tool).toBe('basebackup');
    inventory = join(lab.dir, '..', 'inventory-pgbackrest.yml');
    await writeFile(inventory, stringify({ ...inv, backup: { ...inv.backup, tool: 'pgbackrest' } }));
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('with backup.tool pgbackrest, nightly-backup and the drill are refused naming pgBackRest 2.45 (exit 3, nothing changed)', async () => {
    const backup = await lab.run('nightly-backup.yml', ['-i', inventory, '--yes']);
    expect(backup.exitCode, backup.stdout.slice(-3000)).toBe(3);
    expect(runEnd(backup.events).error!.message).toContain('PostgreSQL 17 needs pgBackRest 2.53.1 or later; this host has 2.45');
    expect(changedSteps(backup.events)).toEqual([]);
    const r = await lab.run('pitr-drill.yml', ['-i', inventory, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(3);
    expect(results(r.events)).toEqual(expect.arrayContaining(['pgbackrest-tools/fit@drill1=failed', 'pgbackrest-tools/fit@bk1=failed']));
    expect(changedSteps(r.events)).toEqual([]);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('nightly-backup takes the base backup with the copy method (pg_basebackup 15 is older), says so, and checks it without a manifest', async () => {
    const r = await lab.run('nightly-backup.yml', ['--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['basebackup/basebackup@bk1=skipped', 'basebackup/copy@bk1=changed', 'basebackup/verify@bk1=skipped', 'basebackup/verify-without-manifest@bk1=ok', 'globals@bk1=skipped']),
    );
    const msg = (step: string) => r.events.find((e) => e.type === 'step-result' && e.step === step)?.msg ?? '';
    expect(msg('basebackup/tools')).toMatch(/pg_basebackup on bk1 is from PostgreSQL 15\.\d+, the server runs 17.*: the base backup is taken with the copy method/);
    expect(msg('basebackup/copy')).toMatch(/with pg_backup_start\/pg_backup_stop and a file copy/);
    expect(msg('tools-basebackup-host')).toMatch(/pg_dumpall on bk1 is from PostgreSQL 15\.\d+.*the globals \(roles, tablespaces\) are not exported/);
    // The repository holds it in pg_basebackup's layout, with what stands in for the manifest.
    const repo = join(lab.dir, 'bk1', 'repo');
    const sets = (await readdir(repo)).filter((d) => /^base-\d{8}T\d{6}Z$/.test(d));
    expect(sets).toHaveLength(1);
    expect((await readdir(join(repo, sets[0]!))).sort()).toEqual(['SHA256SUMS', 'base.tar.gz', 'pg_wal.tar.gz', 'wal_range.json']);
    expect(JSON.parse(await readFile(join(repo, sets[0]!, 'wal_range.json'), 'utf8'))).toMatchObject({ Timeline: 1 });
  });

  it('standby-from-backup builds db2 from that backup: it streams, PostgreSQL 17', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    expect(results(r.events)).toContain('build/restore-base@db2=changed');
    expect(await lab.psql('db2', IN_RECOVERY)).toBe('t');
    expect(await lab.psql('db2', 'SHOW server_version_num')).toMatch(/^17\d{4}$/);
    expect(await lab.psql('db1', 'SELECT application_name || \':\' || state FROM pg_stat_replication')).toBe('db2:streaming');
  });

  it('a drill to a restore point brings the dropped table back (PASSED)', async () => {
    await lab.psql('db1', "CREATE TABLE pitr_demo (id int, note text); INSERT INTO pitr_demo VALUES (1, 'before the mistake')");
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    await lab.psql('db1', 'DROP TABLE pitr_demo');
    const reportFile = join(lab.dir, '..', 'drill17.json');
    const checks = JSON.stringify([{ sql: 'SELECT note FROM pitr_demo', expect: 'before the mistake' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${checks}`, '-p', 'keep=true', '--report', reportFile, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', problems: [], target: { type: 'name', value: 'before-drop' }, target_reached: true, teardown: 'kept' });
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['before the mistake:true']);
    expect(await lab.psql('drill1', 'SHOW server_version_num')).toMatch(/^17\d{4}$/);
    expect(await lab.psql('drill1', IN_RECOVERY)).toBe('f');
    expect(await lab.psql('drill1', 'SELECT count(*) FROM pitr_demo')).toBe('1');
    // The production primary still lacks the table.
    expect(await lab.psql('db1', "SELECT to_regclass('public.pitr_demo') IS NULL")).toBe('t');
  });

  it('promote.yml: db2 becomes read-write, the old primary db1 is fenced (stopped, archive_command off)', async () => {
    await lab.psql('db1', "CREATE TABLE before_promotion AS SELECT 'written on 17' AS note");
    const r = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000) + r.stderr).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['promote@db2=changed', 'fence-archive-command@db1=changed']));
    expect(await lab.psql('db2', IN_RECOVERY)).toBe('f');
    expect(await lab.psql('db2', 'SELECT note FROM before_promotion')).toBe('written on 17');
    expect(await lab.psql('db2', 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    await lab.psql('db2', 'CREATE TABLE after_promotion (id int)');
    // The old primary: stopped, and its effective archive_command empty.
    expect(await lab.postmasterPid('db1')).toBeUndefined();
    expect(await readFile(join(lab.pgdata('db1'), 'postgresql.auto.conf'), 'utf8')).toMatch(/^archive_command = ''$/m);
  });
});
