/**
 * Issue 10, findings 1, 2, 5 and 11 through the CLI on a real lab (PostgreSQL 15, pgBackRest 2.45),
 * with a third database host db3 added to the lab's inventory so that cascades and failover between
 * two standbys can be played. Ports 26860-26863. Each test leaves the topology the next one starts from:
 *
 *   setup      db1 primary, db2 standby of db1, db3 standby of db2 (a cascade)
 *   slots      db2 rebuilt (keeps db3's slot), db3 moved to db1 and back (slot follows)
 *   invariant  a playbook that promotes db2 without fencing db1 is stopped by the engine
 *   --from     promote.yml --from promote -p candidate=db3: the fence runs anyway; db3 primary (TL 2)
 *   --resume   db1 rebuilt under db3; a promotion of db2 fails after the fence, db3 restarted by hand,
 *              --resume fences it again; db2 primary (TL 3)
 *   failover   db3 rebuilt under db2; db1 cut off, db2 crashes: promoting db1 (behind db3) is refused,
 *              then allowed with allow_data_loss and db3 rebuilt as a straggler
 *   straggler  db2 rebuilt under db1; db2 cut off, db1 crashes: db2 promoted with allow_data_loss, db3
 *              cannot follow and the run fails naming the command that rebuilds it; --resume with
 *              rebuild_stragglers passes the guards again and rebuilds db3
 */
import { execa } from 'execa';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, eventually, labUp, results, waitGone, type TestLab } from './lab-helpers.js';
import { labServers } from './fixtures/lab-servers.js';

const BASE_PORT = 26860;
type Db = 'db1' | 'db2' | 'db3';
const DBS: readonly Db[] = ['db1', 'db2', 'db3'];
type Topology = Record<Db, { role: 'primary' } | { role: 'standby'; upstream: Db }>;

describe('guards and fences cannot be skipped; failover picks the most advanced standby; slots follow the topology', () => {
  let lab: TestLab;
  let base: Record<string, any>;
  const port = (h: Db) => BASE_PORT + { db1: 0, db2: 1, db3: 3 }[h];
  const { tryPsql, psql, pgCtl, postmasterPid, recoveryStates } = labServers(() => lab.dir, port, DBS);
  const slots = (h: Db) => psql(h, "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY slot_name) FROM pg_replication_slots");
  const streamingFrom = (h: Db) => psql(h, "SELECT string_agg(application_name || '|' || state, ',' ORDER BY 1) FROM pg_stat_replication");

  /** The lab's inventory with db3 added (its own directories and port) and the roles given. */
  const inventory = async (name: string, topology: Topology): Promise<string> => {
    const inv = structuredClone(base);
    inv.hosts.db3 = JSON.parse(JSON.stringify(inv.hosts.db2).replaceAll(join(lab.dir, 'db2'), join(lab.dir, 'db3')));
    inv.hosts.db3.postgres.port = port('db3');
    for (const h of DBS) {
      delete inv.hosts[h].upstream;
      Object.assign(inv.hosts[h], topology[h]);
    }
    const file = join(lab.dir, `${name}.yml`);
    await writeFile(file, stringify(inv));
    return file;
  };
  const ok = async (playbook: string, args: string[]) => {
    const r = await lab.run(playbook, args);
    if (r.exitCode !== 0) throw new Error(`${playbook} ${args.join(' ')} exited ${r.exitCode}: ${r.stdout.slice(-3000)}\n${r.stderr}`);
    return r;
  };
  /** The standby gets no more WAL: no upstream to stream from, no archive to restore from. */
  const cutOff = async (h: Db, upstream: Db) => {
    await psql(h, "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=nobody'");
    await psql(h, "ALTER SYSTEM SET restore_command = 'false'");
    await psql(h, 'SELECT pg_reload_conf()');
    expect(await eventually(() => streamingFrom(upstream), (v) => !v.includes(`${h}|`))).not.toContain(`${h}|`);
  };
  const reconnect = async (h: Db) => {
    await psql(h, 'ALTER SYSTEM RESET primary_conninfo');
    await psql(h, 'ALTER SYSTEM RESET restore_command');
    await psql(h, 'SELECT pg_reload_conf()');
  };

  let cascade: string;

  beforeAll(async () => {
    lab = await createLab(BASE_PORT, 'guards');
    await labUp(lab);
    base = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    for (const sub of ['', 'run', 'log', 'lock']) {
      await mkdir(join(lab.dir, 'db3', sub), { recursive: true, mode: 0o750 });
      const { stdout } = await execa('id', ['-u', 'postgres']);
      await chown(join(lab.dir, 'db3', sub), Number(stdout), Number((await execa('id', ['-g', 'postgres'])).stdout));
    }
    cascade = await inventory('cascade', { db1: { role: 'primary' }, db2: { role: 'standby', upstream: 'db1' }, db3: { role: 'standby', upstream: 'db2' } });
    await ok('nightly-backup.yml', ['-i', cascade]);
    await ok('standby-from-backup.yml', ['-i', cascade, '-p', 'host=db2', '--yes']);
    await ok('standby-from-backup.yml', ['-i', cascade, '-p', 'host=db3', '--yes']);
    await psql('db1', 'CREATE TABLE guarded (id int PRIMARY KEY); INSERT INTO guarded SELECT generate_series(1, 100)');
  }, 600_000);

  afterAll(async () => {
    const pid = await postmasterPid('db3');
    if (pid) {
      await pgCtl('db3', 'stop', '-m', 'immediate', '-w');
      await waitGone(pid);
    }
    await lab?.down();
  }, 120_000);

  it('max_slot_wal_keep_size is set (10GB by default) on the primary and the standbys', async () => {
    for (const h of DBS) expect(await psql(h, 'SHOW max_slot_wal_keep_size')).toBe('10GB');
  });

  it("rebuilding a middle standby keeps its downstream's slot; moving a standby drops its slot on the old upstream", async () => {
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db3|streaming')).toBe('db3|streaming');
    await ok('standby-from-backup.yml', ['-i', cascade, '-p', 'host=db2', '-p', 'rebuild=true', '--yes']);
    expect(await eventually(() => slots('db2'), (v) => v === 'pgplay_db3:true')).toBe('pgplay_db3:true');
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db3|streaming')).toBe('db3|streaming');

    // db3 moves to db1: its slot goes with it.
    const flat = await inventory('flat', { db1: { role: 'primary' }, db2: { role: 'standby', upstream: 'db1' }, db3: { role: 'standby', upstream: 'db1' } });
    await ok('standby-from-backup.yml', ['-i', flat, '-p', 'host=db3', '--yes']);
    expect(await eventually(() => streamingFrom('db1'), (v) => v === 'db2|streaming,db3|streaming')).toBe('db2|streaming,db3|streaming');
    expect(await slots('db2')).toBe('');
    // ... and back under db2 (the cascade the next tests start from).
    await ok('standby-from-backup.yml', ['-i', cascade, '-p', 'host=db3', '--yes']);
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db3|streaming')).toBe('db3|streaming');
    expect(await eventually(() => slots('db1'), (v) => v === 'pgplay_db2:true')).toBe('pgplay_db2:true');
  }, 300_000);

  it('the engine refuses (exit 3) a promotion while another server runs read-write, whatever the playbook says', async () => {
    const playbook = join(lab.dir, 'promote-unfenced.yml');
    await writeFile(playbook, 'name: unfenced\nsteps:\n  - id: promote\n    hosts: db2\n    postgres: { state: promoted }\n');
    const r = await lab.pgplay(['run', playbook, '-i', cascade, '--yes', '--output', 'json']);
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toContain('db1 runs read-write');
    expect(await recoveryStates()).toEqual({ db1: 'f', db2: 't', db3: 't' });
  });

  it('promote.yml --from promote still runs the pre-checks and the fence; promoting the leaf of a cascade drops the slots nobody uses', async () => {
    const r = await lab.run('promote.yml', ['-i', cascade, '-p', 'candidate=db3', '--from', 'promote', '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['candidate-in-recovery@db3=ok', 'fence@db1=changed', 'caught-up@db3=ok', 'promote@db3=changed']));
    expect(await recoveryStates()).toEqual({ db1: 'down', db2: 't', db3: 'f' });
    expect(await psql('db3', 'SELECT count(*) FROM guarded')).toBe('100');
    // db2 follows db3 on the new timeline; the slot db3 used on db2 is gone, db2 has its own on db3.
    expect(await eventually(() => streamingFrom('db3'), (v) => v === 'db2|streaming')).toBe('db2|streaming');
    expect(await psql('db2', 'SELECT received_tli FROM pg_stat_wal_receiver')).toBe('2');
    expect(await slots('db2')).toBe('');
    expect(await slots('db3')).toBe('pgplay_db2:true');
  }, 300_000);

  it('promote.yml --resume after a failed promotion fences the old primary again when the user restarted it', async () => {
    const underDb3 = await inventory('under-db3', { db1: { role: 'standby', upstream: 'db3' }, db2: { role: 'standby', upstream: 'db3' }, db3: { role: 'primary' } });
    await ok('standby-from-backup.yml', ['-i', underDb3, '-p', 'host=db1', '--yes']);
    await cutOff('db2', 'db3');
    await psql('db3', 'INSERT INTO guarded SELECT generate_series(101, 150)');
    const failed = await lab.run('promote.yml', ['-i', underDb3, '-p', 'candidate=db2', '-p', 'wait=3s', '--yes']);
    expect(failed.exitCode).toBe(1);
    expect(failed.events.findLast((e) => e.type === 'run-end')!.error!.message).toContain('nothing was promoted');
    expect(await recoveryStates()).toEqual({ db1: 't', db2: 't', db3: 'down' });

    // The user ends the fence as told, and fixes the standby's connection.
    expect((await pgCtl('db3', 'start', '-w', '-l', join(lab.dir, 'db3', 'log', 'restarted.log'))).exitCode).toBe(0);
    await reconnect('db2');
    expect(await eventually(() => tryPsql('db2', 'SELECT count(*) FROM guarded'), (x) => x.stdout === '150')).toMatchObject({ stdout: '150' });

    const resumed = await lab.run('promote.yml', ['-i', underDb3, '--resume', '--yes']);
    expect(resumed.exitCode, resumed.stdout.slice(-3000)).toBe(0);
    expect(results(resumed.events)).toEqual(expect.arrayContaining(['fence@db3=changed', 'promote@db2=changed']));
    expect(await recoveryStates()).toEqual({ db1: 't', db2: 'f', db3: 'down' });
    expect(await psql('db2', 'SELECT count(*) FROM guarded')).toBe('150');
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db1|streaming')).toBe('db1|streaming');
  }, 300_000);

  it('failover refuses (exit 3) a candidate behind another standby; allow_data_loss promotes it and rebuild_stragglers rebuilds the other', async () => {
    const underDb2 = await inventory('under-db2', { db1: { role: 'standby', upstream: 'db2' }, db2: { role: 'primary' }, db3: { role: 'standby', upstream: 'db2' } });
    await ok('standby-from-backup.yml', ['-i', underDb2, '-p', 'host=db3', '--yes']);
    await cutOff('db1', 'db2');
    await psql('db2', 'INSERT INTO guarded SELECT generate_series(151, 250)');
    expect(await eventually(() => tryPsql('db3', 'SELECT count(*) FROM guarded'), (x) => x.stdout === '250')).toMatchObject({ stdout: '250' });
    expect(await psql('db1', 'SELECT count(*) FROM guarded')).toBe('150');
    // The primary crashes.
    expect((await pgCtl('db2', 'stop', '-m', 'immediate', '-w')).exitCode).toBe(0);

    const refused = await lab.run('promote.yml', ['-i', underDb2, '-p', 'candidate=db1', '--yes']);
    expect(refused.exitCode).toBe(3);
    expect(refused.events.findLast((e) => e.type === 'run-end')!.error!.message).toMatch(/^db1 is \d+ bytes behind db3 \(db1 received \S+ replayed \S+, db3 received \S+ replayed \S+\)/);
    expect(changedSteps(refused.events)).toEqual([]);
    expect(await recoveryStates()).toEqual({ db1: 't', db2: 'down', db3: 't' });
    // What the test did to cut db1 off must not follow its backup into the standby rebuilt from it. Its
    // upstream is down and the archive ends before the 100 rows, so db1 still cannot get them.
    await reconnect('db1');

    const allowed = await lab.run('promote.yml', [
      '-i', underDb2, '-p', 'candidate=db1', '-p', 'allow_data_loss=true', '-p', 'rebuild_stragglers=true', '-p', 'follow_timeout=15s', '--yes',
    ]);
    expect(allowed.exitCode, allowed.stdout.slice(-3000)).toBe(0);
    expect(results(allowed.events)).toEqual(expect.arrayContaining(['promote@db1=changed', 'follows@db3=failed', 'rebuild-stragglers[0]/pgbackrest/restore@db3=changed']));
    expect(await recoveryStates()).toEqual({ db1: 'f', db2: 'down', db3: 't' });
    // The 100 rows only db2 and db3 had are lost, as allowed; db3 now holds what db1 holds.
    expect(await psql('db1', 'SELECT count(*) FROM guarded')).toBe('150');
    expect(await eventually(() => streamingFrom('db1'), (v) => v === 'db3|streaming')).toBe('db3|streaming');
    expect(await psql('db3', 'SELECT count(*) FROM guarded')).toBe('150');
  }, 400_000);

  it('without rebuild_stragglers, a standby that cannot follow the new primary fails the run with the command that rebuilds it', async () => {
    const underDb1 = await inventory('under-db1', { db1: { role: 'primary' }, db2: { role: 'standby', upstream: 'db1' }, db3: { role: 'standby', upstream: 'db1' } });
    await ok('standby-from-backup.yml', ['-i', underDb1, '-p', 'host=db2', '--yes']);
    await cutOff('db2', 'db1');
    await psql('db1', 'INSERT INTO guarded SELECT generate_series(251, 300)');
    expect(await eventually(() => tryPsql('db3', 'SELECT count(*) FROM guarded'), (x) => x.stdout === '200')).toMatchObject({ stdout: '200' });
    expect((await pgCtl('db1', 'stop', '-m', 'immediate', '-w')).exitCode).toBe(0);
    // As in the failover above: the cut-off must not follow db2's backup into db3 when it is rebuilt.
    await reconnect('db2');

    const r = await lab.run('promote.yml', ['-i', underDb1, '-p', 'candidate=db2', '-p', 'allow_data_loss=true', '-p', 'follow_timeout=10s', '--yes']);
    expect(r.exitCode).toBe(1);
    const message = r.events.findLast((e) => e.type === 'run-end')!.error!.message;
    expect(message).toContain('db3 does not stream from db2 on its new timeline');
    expect(message).toContain('pgplay run standby-from-backup.yml -p host=db3 -p rebuild=true --yes');
    expect(await recoveryStates()).toEqual({ db1: 'down', db2: 'f', db3: 't' });
    expect(await psql('db2', 'SELECT count(*) FROM guarded')).toBe('150');

    // Resumed with rebuild_stragglers: the guards run again and accept the candidate this promotion
    // promoted (no exit 3), the promotion is not redone, db3 is rebuilt and follows db2.
    const resumed = await lab.run('promote.yml', ['-i', underDb1, '--resume', '-p', 'rebuild_stragglers=true', '--yes']);
    expect(resumed.exitCode, resumed.stdout.slice(-3000)).toBe(0);
    expect(results(resumed.events)).toEqual(
      expect.arrayContaining(['candidate-in-recovery@db2=ok', 'fence@db1=ok', 'promote@db2=skipped', 'rebuild-stragglers[0]/pgbackrest/restore@db3=changed']),
    );
    expect(await recoveryStates()).toEqual({ db1: 'down', db2: 'f', db3: 't' });
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db3|streaming')).toBe('db3|streaming');
    expect(await psql('db3', 'SELECT count(*) FROM guarded')).toBe('150');
  }, 400_000);
});
