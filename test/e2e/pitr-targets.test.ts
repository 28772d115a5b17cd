/**
 * PITR targets are checked before anything is restored, and a table comes back from a drill copy
 * (issue 12, items 6 and 7). One lab (ports 27730-27732) with two full backups and the mistakes
 * between and after them:
 *
 *   full 1 | xid X: items 1..100 | items 101..150 | restore point rp-between | items emptied | precious (40 rows)
 *   full 2 | restore point before-delete | 30 rows of precious deleted
 *
 * An xid or name target between the backups can only be reached from full 1: pgBackRest restores the
 * newest set unless told otherwise, and replaying from full 2 never meets the target.
 */
import { execa } from 'execa';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { createLab, labUp, PLAYBOOKS, type TestLab } from './lab-helpers.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';

function drillReport(lab: TestLab, events: { runId?: string }[]): Promise<DrillReport> {
  const runId = events[0]!.runId!;
  return readFile(join(lab.stateDir, 'drills', `${runId}.json`), 'utf8').then((t) => JSON.parse(t) as DrillReport);
}

describe('PITR targets and recover-table.yml on the lab (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  let xid: string;
  let full1: string;
  let full2: string;

  const fullBackup = async () => {
    const r = await lab.run('nightly-backup.yml', ['-p', 'type=full', '--yes']);
    if (r.exitCode !== 0) throw new Error(`nightly-backup failed: ${r.stdout.slice(-3000)}`);
    return (await lab.pgbackrestInfo()).backup.at(-1)!.label;
  };

  beforeAll(async () => {
    lab = await createLab(27730, 'pitr-targets');
    await labUp(lab);
    // Commit timestamps let pgplay place an xid target in time (pg_xact_commit_timestamp).
    await lab.psql('db1', 'ALTER SYSTEM SET track_commit_timestamp = on');
    const restart = await execa(
      'runuser',
      ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, 'restart', '-D', lab.pgdata('db1'), '-m', 'fast', '-w', '-t', '120', '-l', join(lab.pgdata('db1'), 'log', 'test-restart.log')],
      { reject: false, cwd: '/' },
    );
    if (restart.exitCode !== 0) throw new Error(`pg_ctl restart failed: ${restart.stderr}`);
    expect(await lab.psql('db1', 'SHOW track_commit_timestamp')).toBe('on');

    full1 = await fullBackup();
    xid = await lab.psql('db1', 'CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100); SELECT pg_current_xact_id()');
    expect(xid).toMatch(/^\d+$/);
    await lab.psql('db1', 'INSERT INTO items SELECT generate_series(101, 150)');
    await lab.psql('db1', "SELECT pg_create_restore_point('rp-between')");
    // A segment of its own between the backups: the one the missing-WAL test removes.
    await lab.psql('db1', 'SELECT pg_switch_wal()');
    await lab.psql('db1', 'DELETE FROM items');
    await lab.psql('db1', 'CREATE TABLE precious (id int PRIMARY KEY, note text NOT NULL); INSERT INTO precious SELECT g, $$row $$ || g FROM generate_series(1, 40) g', 'app');
    await lab.psql('db1', 'SELECT pg_switch_wal()');
    full2 = await fullBackup();
    expect(full2).not.toBe(full1);
    await lab.psql('db1', "SELECT pg_create_restore_point('before-delete')");
    await lab.psql('db1', 'DELETE FROM precious WHERE id > 10', 'app');
  }, 900_000);

  afterAll(async () => {
    await lab?.down();
  });

  it('refuses a time without a zone offset before anything runs (exit 2), naming the param and the playbook', async () => {
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=time', '-p', 'target_value=2024-05-01 12:00:00', '--yes']);
    expect(r.exitCode).toBe(2);
    const error = r.events.at(-1) as unknown as { type: string; errors: { message: string; expected?: string }[] };
    expect(error.type).toBe('error');
    const text = JSON.stringify(error.errors);
    expect(text).toContain('param \\"target_value\\"');
    expect(text).toContain('zone offset');
    expect(text).toContain('pitr-drill.yml');
    // Nothing ran: no step result at all, and the drill host has no copy.
    expect(r.events.filter((e) => e.type === 'step-result')).toEqual([]);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('an xid target older than the newest backup is reached from the set before it (commit timestamp)', async () => {
    const checks = JSON.stringify([{ sql: 'SELECT count(*) FROM items', expect: '100' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=xid', '-p', `target_value=${xid}`, '-p', `checks=${checks}`, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    const report = await drillReport(lab, r.events as { runId?: string }[]);
    expect(report).toMatchObject({ status: 'passed', target_reached: true, teardown: 'removed', backup: { set: full1 } });
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['100:true']);
    expect(report.backup.reason).toContain(`committed at`);
    expect(report.backup.reason).toContain(full1);
    expect(report.proof.some((l) => l.includes(`recovery stopping after commit of transaction ${xid}`))).toBe(true);
  });

  it('a name target older than the newest backup is reached from the set before it (restore point in the server log)', async () => {
    const checks = JSON.stringify([{ sql: 'SELECT count(*) FROM items', expect: '150' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=rp-between', '-p', `checks=${checks}`, '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    const report = await drillReport(lab, r.events as { runId?: string }[]);
    expect(report).toMatchObject({ status: 'passed', target_reached: true, backup: { set: full1 } });
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['150:true']);
    expect(report.backup.reason).toContain('restore point "rp-between" created at');
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "rp-between"'))).toBe(true);
    // The text report names the set and why.
    const text = await readFile(join(lab.stateDir, 'drills', `${(r.events[0] as { runId?: string }).runId}.txt`), 'utf8');
    expect(text).toContain(`backup restored  ${full1} (full)`);
    expect(text).toContain('chosen because');
  });

  it('recover-table.yml brings deleted rows back under a new name, leaves the live table alone and removes its copy', async () => {
    const drillPid = await lab.postmasterPid('drill1');
    expect(drillPid).toBeUndefined();
    const args = ['-p', 'tables=precious', '-p', 'database=app', '-p', 'into=precious_recovered', '-p', 'target=name', '-p', 'target_value=before-delete'];
    // plan shows it and changes nothing.
    const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'recover-table.yml'), ...args, '--output', 'json']);
    expect(plan.exitCode, plan.stdout.slice(-3000)).toBe(0);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await lab.tryPsql('db1', 'SELECT 1 FROM precious_recovered', 'app')).toMatchObject({ exitCode: 1 });
    const r = await lab.run('recover-table.yml', [
      '-p', 'tables=precious', '-p', 'database=app', '-p', 'into=precious_recovered',
      '-p', 'target=name', '-p', 'target_value=before-delete', '--yes',
    ]);
    expect(r.exitCode, r.stdout.slice(-4000)).toBe(0);
    expect(await lab.psql('db1', 'SELECT count(*) FROM precious_recovered', 'app')).toBe('40');
    expect(await lab.psql('db1', 'SELECT count(*), max(id) FROM precious', 'app')).toBe('10|10');
    expect(await lab.psql('db1', "SELECT note FROM precious_recovered WHERE id = 40", 'app')).toBe('row 40');
    // The primary key came back with the definitions.
    expect(await lab.psql('db1', "SELECT count(*) FROM pg_indexes WHERE tablename = 'precious_recovered'", 'app')).toBe('1');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    // The copy this run made is gone.
    expect(await lab.postmasterPid('drill1')).toBeUndefined();
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
    const counted = r.events.find((e) => e.step === 'compare' && e.type === 'step-result');
    expect(counted?.status).toBe('ok');
  });

  it('recover-table.yml refuses (exit 3) when the name it would restore into exists, and touches nothing', async () => {
    const r = await lab.run('recover-table.yml', [
      '-p', 'tables=precious', '-p', 'database=app', '-p', 'into=precious_recovered',
      '-p', 'target=name', '-p', 'target_value=before-delete', '--yes',
    ]);
    expect(r.exitCode).toBe(3);
    expect(r.events.at(-1)!.error!.message).toContain('precious_recovered already exists');
    expect(r.events.filter((e) => e.type === 'step-result' && e.status === 'changed')).toEqual([]);
    expect(await lab.psql('db1', 'SELECT count(*) FROM precious_recovered', 'app')).toBe('40');
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a target whose WAL has a missing segment is refused in plan (exit 3), naming the segment', async () => {
    const info = await lab.pgbackrestInfo();
    const stop1 = info.backup.find((b) => b.label === full1)!.archive.stop;
    const start2 = info.backup.find((b) => b.label === full2)!.archive.start;
    const dir = join(lab.dir, 'bk1', 'repo', 'archive', 'lab', '15-1', stop1.slice(0, 16));
    const between = (await readdir(dir)).filter((f) => /^[0-9A-F]{24}-/.test(f) && f.slice(0, 24) > stop1 && f.slice(0, 24) < start2).sort();
    expect(between.length).toBeGreaterThan(0);
    const victim = between[0]!;
    await rm(join(dir, victim));
    const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'pitr-drill.yml'), '-p', 'target=xid', '-p', `target_value=${xid}`, '--output', 'json']);
    expect(plan.exitCode, plan.stdout.slice(-3000)).toBe(3);
    expect(plan.stdout).toContain(`WAL segment ${victim.slice(0, 24)} is missing`);
    // A run refuses the same way before it restores anything.
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=xid', '-p', `target_value=${xid}`, '--yes']);
    expect(r.exitCode).toBe(3);
    expect(r.events.at(-1)!.error!.message).toContain(`WAL segment ${victim.slice(0, 24)} is missing`);
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
