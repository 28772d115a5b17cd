import { execa } from 'execa';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, eventually, events, labUp, PLAYBOOKS, results, type LabHost, type TestLab } from './lab-helpers.js';

describe('standby-from-backup.yml and promote.yml on the lab (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  const streamingFrom = (upstream: LabHost) => lab.psql(upstream, 'SELECT application_name, state FROM pg_stat_replication ORDER BY 1');

  beforeAll(async () => {
    lab = await createLab(26020, 'standby');
    await labUp(lab);
    const backup = await lab.run('nightly-backup.yml');
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('builds db2 from the repository: in recovery, streaming in pg_stat_replication, password only in a 0600 .pgpass', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(
      // No host streams from db2: no downstream slots to make, no connection to db2 for them.
      expect.arrayContaining(['build/pgbackrest/restore@db2=changed', 'build/slot@db1=changed', 'build/start@db2=changed', 'build/downstream-slots@db2=skipped', 'build/streaming@db1=ok']),
    );
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await streamingFrom('db1')).toBe('db2|streaming');
    expect(await lab.psql('db1', "SELECT active FROM pg_replication_slots WHERE slot_name = 'pgplay_db2'")).toBe('t');
    const conninfo = await lab.psql('db2', 'SHOW primary_conninfo');
    expect(conninfo).toContain(`passfile=${join(lab.dir, 'db2', 'pgpass')}`);
    expect(conninfo).not.toMatch(/password/i);
    const pgpass = join(lab.dir, 'db2', 'pgpass');
    expect((await stat(pgpass)).mode & 0o777).toBe(0o600);
    const secret = (await readFile(join(lab.dir, 'secrets', 'replication-password'), 'utf8')).trim();
    expect(await readFile(pgpass, 'utf8')).toBe(`127.0.0.1:26020:replication:replicator:${secret}\n`);
    expect(r.stdout).not.toContain(secret);
  });

  it('a row written on the primary appears on the standby', async () => {
    await lab.psql('db1', "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'written on db1')");
    expect(await eventually(() => lab.tryPsql('db2', 'SELECT item FROM orders WHERE id = 1'), (r) => r.stdout === 'written on db1')).toMatchObject({
      stdout: 'written on db1',
    });
  });

  it('running it again changes nothing', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(r.exitCode).toBe(0);
    expect(changedSteps(r.events)).toEqual([]);
    expect(results(r.events)).toContain('build/pgbackrest/restore@db2=skipped');
  });

  it('a standby that runs but no longer streams: without --yes and without a terminal the rebuild is refused (exit 3) before db2 is stopped', async () => {
    // db2 keeps serving reads from recovery, but its receiver can no longer reach the upstream.
    await lab.psql('db2', "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=nobody'");
    await lab.psql('db2', 'SELECT pg_reload_conf()');
    await eventually(() => lab.psql('db2', "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'"), (n) => n === '0');
    const pidBefore = await lab.postmasterPid('db2');
    try {
      const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
      expect(r.exitCode, r.stdout + r.stderr).toBe(3);
      const refusal = r.events.at(-1)!.error!;
      expect(refusal.message).toContain('not confirmed: db2 must be rebuilt');
      expect(refusal.hint).toContain('rerun with --yes');
      expect(results(r.events)).toContain('build/needs-build@db2=ok');
      expect(changedSteps(r.events)).toEqual([]);
      expect(r.events.some((e) => e.type === 'step-start' && e.step === 'build/stop')).toBe(false);
      expect(await lab.postmasterPid('db2')).toBe(pidBefore);
      expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
      expect(await lab.psql('db2', "SELECT count(*) FROM orders")).toBe('1');
    } finally {
      // Streaming again for the tests after this one: a stopped db2 (what the refusal must prevent) is
      // rebuilt, which also restores its settings from the backup.
      if ((await lab.postmasterPid('db2')) === undefined) {
        await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
      } else {
        await lab.psql('db2', 'ALTER SYSTEM RESET primary_conninfo');
        await lab.psql('db2', 'SELECT pg_reload_conf()');
      }
      await eventually(() => streamingFrom('db1'), (s) => s === 'db2|streaming', 30_000);
    }
  });

  it('without --yes and without a terminal, restore.yml and pitr-drill.yml are refused at their one question, before anything changes', async () => {
    // The drill: nothing restored into drill1, no WAL switch asked of the primary.
    const drill = await lab.run('pitr-drill.yml');
    expect(drill.exitCode, drill.stdout + drill.stderr).toBe(3);
    expect(drill.events.at(-1)!.error!.message).toContain('not confirmed: drill on drill1: ');
    expect(changedSteps(drill.events)).toEqual([]);
    expect(drill.events.some((e) => e.type === 'step-start' && e.step === 'archive-current')).toBe(false);
    await expect(stat(lab.pgdata('drill1'))).rejects.toThrow(/ENOENT/);

    // A restore in place of a primary that is down: its PGDATA stays where it is (it used to be renamed
    // aside, an empty one made, and then the restore refused).
    const pid = (await lab.postmasterPid('db1'))!;
    await execa('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-D', lab.pgdata('db1'), '-m', 'fast', '-w'], { cwd: '/' });
    try {
      expect(await lab.postmasterPid('db1')).not.toBe(pid);
      const restore = await lab.run('restore.yml', ['-p', 'host=db1']);
      expect(restore.exitCode, restore.stdout + restore.stderr).toBe(3);
      expect(restore.events.at(-1)!.error!.message).toContain('not confirmed: restore db1 from the backup to the end of the WAL archive');
      expect(changedSteps(restore.events)).toEqual([]);
      expect((await readdir(join(lab.dir, 'db1'))).filter((f) => f.startsWith('data.pgplay-'))).toEqual([]);
      expect((await stat(join(lab.pgdata('db1'), 'PG_VERSION'))).isFile()).toBe(true);
    } finally {
      await labUp(lab);
      await eventually(() => streamingFrom('db1'), (s) => s === 'db2|streaming', 30_000);
    }
    expect(await lab.psql('db1', 'SELECT count(*) FROM orders')).toBe('1');
  });

  it('nightly-backup with backup.fromStandby copies the files from the standby', async () => {
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    inventory.backup.fromStandby = true;
    const file = join(lab.dir, 'inventory-from-standby.yml');
    await writeFile(file, stringify(inventory));
    const before = (await lab.pgbackrestInfo()).backup.length;
    const r = await lab.run('nightly-backup.yml', ['-i', file, '-p', 'type=full']);
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['standby-to-back-up-from@db2=ok', 'pgbackrest/backup-full@bk1=changed']));
    expect(await readFile(join(lab.dir, 'bk1', 'pgbackrest.conf'), 'utf8')).toContain('\nbackup-standby=y\n');
    expect((await lab.pgbackrestInfo()).backup.length).toBe(before + 1);
    // pgBackRest waits for the standby to replay the backup's start point before copying from it.
    expect(await readFile(join(lab.dir, 'bk1', 'log', 'lab-backup.log'), 'utf8')).toContain('wait for replay on the standby to reach');
  });

  it('refuses (exit 3) to build a standby over the primary or the drill host', async () => {
    const primary = await lab.run('standby-from-backup.yml', ['-p', 'host=db1', '--yes']);
    expect(primary.exitCode).toBe(3);
    expect(primary.events.at(-1)!.error!.message).toContain('db1 is not a standby in the inventory (role primary)');
    const drill = await lab.run('standby-from-backup.yml', ['-p', 'host=drill1', '--yes']);
    expect(drill.exitCode).toBe(3);
    expect(changedSteps([...primary.events, ...drill.events])).toEqual([]);
    expect(await lab.psql('db1', 'SELECT count(*) FROM orders')).toBe('1');
  });

  it('plan of a promotion (with rebuild) says what would happen and changes nothing', async () => {
    const pid = await lab.postmasterPid('db1');
    const r = await lab.pgplay(['plan', join(PLAYBOOKS, 'promote.yml'), '-p', 'candidate=db2', '-p', 'rebuild_old_primary=true', '--output', 'json']);
    expect(r.exitCode).toBe(0);
    const evs = events(r.stdout);
    expect(results(evs)).toEqual(expect.arrayContaining(['fence@db1=changed', 'promote@db2=changed', 'pgbackrest/backup@bk1=changed']));
    expect(evs.find((e) => e.type === 'step-result' && e.step === 'promote')!.msg).toBe('would promote db2 (timeline 1)');
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('promote refuses (exit 3) while replay is paused, and with the lag figure when it lags too far', async () => {
    await lab.psql('db2', 'SELECT pg_wal_replay_pause()');
    const paused = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(paused.exitCode).toBe(3);
    expect(paused.events.at(-1)!.error!.message).toContain('WAL replay is paused on db2');
    await lab.psql('db2', 'SELECT pg_wal_replay_resume()');

    // A delayed standby could not catch up after the fence: refused before anything happens.
    await lab.psql('db2', "ALTER SYSTEM SET recovery_min_apply_delay = '1h'");
    await lab.psql('db2', 'SELECT pg_reload_conf()');
    const delayed = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(delayed.exitCode).toBe(3);
    expect(delayed.events.at(-1)!.error!.message).toContain('db2 replays with recovery_min_apply_delay = 1h');
    await lab.psql('db2', 'ALTER SYSTEM RESET recovery_min_apply_delay');

    // Cut the standby off its upstream: it only gets WAL from the archive, which ends at the last full
    // segment, so what the primary writes now is WAL the standby has not replayed.
    await lab.psql('db2', "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=nobody'");
    await lab.psql('db2', 'SELECT pg_reload_conf()');
    await eventually(() => streamingFrom('db1'), (v) => v === '');
    await lab.psql('db1', "INSERT INTO orders SELECT g, 'not streamed' FROM generate_series(2, 2000) g");
    const lagging = await lab.run('promote.yml', ['-p', 'candidate=db2', '-p', 'max_lag_bytes=1kB', '--yes']);
    expect(lagging.exitCode).toBe(3);
    expect(lagging.events.at(-1)!.error!.message).toMatch(/^db2 replays \d+ bytes behind db1 \(\S+ vs \S+\), more than max_lag_bytes 1kB/);
    expect(changedSteps([...paused.events, ...delayed.events, ...lagging.events])).toEqual([]);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');

    await lab.psql('db2', 'ALTER SYSTEM RESET primary_conninfo');
    await lab.psql('db2', 'SELECT pg_reload_conf()');
    expect(await eventually(() => streamingFrom('db1'), (v) => v === 'db2|streaming')).toBe('db2|streaming');
    expect(await eventually(() => lab.tryPsql('db2', 'SELECT count(*) FROM orders'), (r) => r.stdout === '2000')).toMatchObject({ stdout: '2000' });
  });

  it('promotes db2: writable on a new timeline, db1 fenced and refusing writes, a new full backup on the new timeline', async () => {
    const started = Math.floor(Date.now() / 1000);
    const r = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode).toBe(0);
    // rebuild_old_primary is false: the include is skipped as a whole.
    expect(results(r.events).some((x) => x.startsWith('rebuild-old-primary/'))).toBe(false);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['fence@db1=changed', 'caught-up@db2=ok', 'promote@db2=changed', 'read-write@db2=ok', 'pgbackrest/backup@bk1=changed']),
    );
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    await lab.psql('db2', "INSERT INTO orders VALUES (5000, 'written on db2')");
    expect(await lab.psql('db2', 'SELECT timeline_id FROM pg_control_checkpoint()')).toBe('2');
    expect(await lab.psql('db2', 'SELECT count(*) FROM orders')).toBe('2001');

    expect(await lab.postmasterPid('db1')).toBeUndefined();
    const write = await lab.tryPsql('db1', "INSERT INTO orders VALUES (6000, 'split brain')");
    expect(write.exitCode).not.toBe(0);
    expect(write.stderr).toContain('No such file or directory');

    const info = await lab.pgbackrestInfo();
    const newest = info.backup.at(-1)!;
    expect(newest.type).toBe('full');
    expect(newest.timestamp.start).toBeGreaterThanOrEqual(started);
    expect(newest.archive.start.slice(0, 8)).toBe('00000002');

    // The lab's inventory follows the promotion; a second promote of db2 refuses, as db2 is no standby now.
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.hosts.db2.role).toBe('primary');
    expect(inventory.hosts.db1).toMatchObject({ role: 'standby', upstream: 'db2' });
    const again = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(again.exitCode).toBe(3);
    expect(again.events.at(-1)!.error!.message).toContain('db2 has role primary, not standby');
  });

  it('db1 comes back as a standby of db2, then promote with rebuild_old_primary swaps them again', async () => {
    // Without --yes and without a terminal the rejoin of the fenced db1 is refused at its one question:
    // the fence is not lifted (pgbackrest start), nothing is rewound or restored.
    const unconfirmed = await lab.run('rejoin.yml', ['-p', 'host=db1']);
    expect(unconfirmed.exitCode, unconfirmed.stdout + unconfirmed.stderr).toBe(3);
    expect(unconfirmed.events.at(-1)!.error!.message).toContain('not confirmed: db1 rejoins as a standby of db2');
    expect(changedSteps(unconfirmed.events)).toEqual([]);
    expect(await lab.postmasterPid('db1')).toBeUndefined();

    const rebuilt = await lab.run('standby-from-backup.yml', ['-p', 'host=db1', '--yes']);
    expect(rebuilt.exitCode).toBe(0);
    expect(await streamingFrom('db2')).toBe('db1|streaming');

    const r = await lab.run('promote.yml', ['-p', 'candidate=db1', '-p', 'rebuild_old_primary=true', '--yes']);
    expect(r.exitCode).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['promote@db1=changed', 'rebuild-old-primary/build/start@db2=changed', 'rebuild-old-primary/build/streaming@db1=ok']),
    );
    // The rejoin (include/rejoin.yml) took pg_rewind or, when the lab's servers do not allow it, the delta restore.
    const rejoin = results(r.events).filter((x) => /^rebuild-old-primary\/(rewind|build\/pgbackrest\/restore)@db2=changed$/.test(x));
    expect(rejoin, results(r.events).join('\n')).toHaveLength(1);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery(), timeline_id FROM pg_control_checkpoint()')).toBe('f|3');
    expect(await streamingFrom('db1')).toBe('db2|streaming');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    await lab.psql('db1', "INSERT INTO orders VALUES (7000, 'written on db1 again')");
    expect(await eventually(() => lab.tryPsql('db2', 'SELECT item FROM orders WHERE id = 7000'), (x) => x.stdout !== '')).toMatchObject({
      stdout: 'written on db1 again',
    });
    const refused = await lab.tryPsql('db2', "INSERT INTO orders VALUES (7001, 'not here')");
    expect(refused.stderr).toContain('cannot execute INSERT in a read-only transaction');
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.hosts.db1.role).toBe('primary');
    expect(inventory.hosts.db2).toMatchObject({ role: 'standby', upstream: 'db1' });
  });
});
