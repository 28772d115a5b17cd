/**
 * Issue 10, finding 5's last proof: a failover that leaves TWO standbys unable to follow the new primary
 * (both hold WAL past the fork), through the CLI on a real lab (PostgreSQL 15, pgBackRest 2.45) with two
 * database hosts db3 and db4 added to the lab's inventory. promote.yml loops its standby-build include over
 * the stragglers (rebuild-stragglers[0]/..., rebuild-stragglers[1]/...): the proof that the loop rebuilds
 * every one, not only the first. Ports 26900-26904. The tests share one lab and run in order:
 *
 *   setup       db1 primary, db2 db3 db4 standbys of db1
 *   rebuild     db2 cut off, rows written, db1 crashes: db2 promoted with allow_data_loss and
 *               rebuild_stragglers; db3 and db4 are rebuilt and stream from db2
 *   no flag     db1 rebuilt under db2 and cut off, rows written, db2 crashes: db1 promoted with
 *               allow_data_loss alone fails (exit 1) naming db3 and db4
 */
import { execa } from 'execa';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, eventually, labUp, results, waitGone, type JsonEvent, type TestLab } from './lab-helpers.js';
import { labServers } from './fixtures/lab-servers.js';

const BASE_PORT = 26900;
type Db = 'db1' | 'db2' | 'db3' | 'db4';
const DBS: readonly Db[] = ['db1', 'db2', 'db3', 'db4'];
/** The hosts this file adds to the lab (the lab itself stops db1 and db2). */
const ADDED: readonly Db[] = ['db3', 'db4'];
type Topology = Record<Db, { role: 'primary' } | { role: 'standby'; upstream: Db }>;

describe('failover with two standbys that cannot follow: rebuild_stragglers rebuilds both', () => {
  let lab: TestLab;
  let base: Record<string, any>;
  const port = (h: Db) => BASE_PORT + { db1: 0, db2: 1, db3: 3, db4: 4 }[h];
  const { tryPsql, psql, pgCtl, postmasterPid, recoveryStates } = labServers(() => lab.dir, port, DBS);
  const streamingFrom = (h: Db) => psql(h, "SELECT string_agg(application_name || '|' || state, ',' ORDER BY application_name) FROM pg_stat_replication");
  const systemId = (h: Db) => psql(h, 'SELECT system_identifier FROM pg_control_system()');
  const count = (h: Db) => tryPsql(h, 'SELECT count(*) FROM guarded');

  /** The lab's inventory with db3 and db4 added (their own directories and ports) and the roles given. */
  const inventory = async (name: string, topology: Topology): Promise<string> => {
    const inv = structuredClone(base);
    for (const h of ADDED) {
      inv.hosts[h] = JSON.parse(JSON.stringify(inv.hosts.db2).replaceAll(join(lab.dir, 'db2'), join(lab.dir, h)));
      inv.hosts[h].postgres.port = port(h);
    }
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
  /** What the test did to cut a standby off must not follow its backup into the standbys rebuilt from it. */
  const reconnect = async (h: Db) => {
    await psql(h, 'ALTER SYSTEM RESET primary_conninfo');
    await psql(h, 'ALTER SYSTEM RESET restore_command');
    await psql(h, 'SELECT pg_reload_conf()');
  };
  const stepResult = (evs: JsonEvent[], step: string, host: string) => evs.find((e) => e.type === 'step-result' && e.step === step && e.host === host);

  beforeAll(async () => {
    lab = await createLab(BASE_PORT, 'stragglers');
    await labUp(lab);
    base = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    const uid = Number((await execa('id', ['-u', 'postgres'])).stdout);
    const gid = Number((await execa('id', ['-g', 'postgres'])).stdout);
    for (const h of ADDED) {
      for (const sub of ['', 'run', 'log', 'lock']) {
        await mkdir(join(lab.dir, h, sub), { recursive: true, mode: 0o750 });
        await chown(join(lab.dir, h, sub), uid, gid);
      }
    }
    const underDb1 = await inventory('under-db1', {
      db1: { role: 'primary' },
      db2: { role: 'standby', upstream: 'db1' },
      db3: { role: 'standby', upstream: 'db1' },
      db4: { role: 'standby', upstream: 'db1' },
    });
    await ok('nightly-backup.yml', ['-i', underDb1]);
    for (const h of ['db2', 'db3', 'db4']) await ok('standby-from-backup.yml', ['-i', underDb1, '-p', `host=${h}`, '--yes']);
    await psql('db1', 'CREATE TABLE guarded (id int PRIMARY KEY); INSERT INTO guarded SELECT generate_series(1, 100)');
    expect(await eventually(() => streamingFrom('db1'), (v) => v === 'db2|streaming,db3|streaming,db4|streaming')).toBe('db2|streaming,db3|streaming,db4|streaming');
  }, 600_000);

  afterAll(async () => {
    for (const h of ADDED) {
      const pid = await postmasterPid(h);
      if (pid) {
        await pgCtl(h, 'stop', '-m', 'immediate', '-w');
        await waitGone(pid);
      }
    }
    await lab?.down();
  }, 120_000);

  it('promote.yml -p rebuild_stragglers=true rebuilds both standbys that hold WAL past the fork; they stream from the new primary', async () => {
    const underDb1 = join(lab.dir, 'under-db1.yml');
    await cutOff('db2', 'db1');
    await psql('db1', 'INSERT INTO guarded SELECT generate_series(101, 150)');
    for (const h of ['db3', 'db4'] as const) expect(await eventually(() => count(h), (x) => x.stdout === '150')).toMatchObject({ stdout: '150' });
    expect((await count('db2')).stdout).toBe('100');
    // The primary crashes.
    expect((await pgCtl('db1', 'stop', '-m', 'immediate', '-w')).exitCode).toBe(0);
    await reconnect('db2');

    const r = await lab.run('promote.yml', [
      '-i', underDb1, '-p', 'candidate=db2', '-p', 'allow_data_loss=true', '-p', 'rebuild_stragglers=true', '-p', 'follow_timeout=10s', '--yes',
    ]);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining([
        'promote@db2=changed',
        'follows@db3=failed',
        'follows@db4=failed',
        'rebuild-stragglers[0]/pgbackrest/restore@db3=changed',
        'rebuild-stragglers[1]/pgbackrest/restore@db4=changed',
      ]),
    );
    expect(await recoveryStates()).toEqual({ db1: 'down', db2: 'f', db3: 't', db4: 't' });
    // Both rebuilt from the new primary's cluster, streaming from it.
    const newPrimary = await systemId('db2');
    expect(await systemId('db3')).toBe(newPrimary);
    expect(await systemId('db4')).toBe(newPrimary);
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db3|streaming,db4|streaming')).toBe('db3|streaming,db4|streaming');
    // The 50 rows only db1, db3 and db4 had are lost, as allowed; a row written after the promotion reaches both.
    await psql('db2', 'INSERT INTO guarded VALUES (1001)');
    for (const h of ['db3', 'db4'] as const) expect(await eventually(() => count(h), (x) => x.stdout === '101')).toMatchObject({ stdout: '101' });
    expect(await psql('db2', 'SELECT count(*) FROM guarded')).toBe('101');
  }, 400_000);

  it('without rebuild_stragglers the same failover fails (exit 1) naming both standbys that cannot follow', async () => {
    const underDb2 = await inventory('under-db2', {
      db1: { role: 'standby', upstream: 'db2' },
      db2: { role: 'primary' },
      db3: { role: 'standby', upstream: 'db2' },
      db4: { role: 'standby', upstream: 'db2' },
    });
    await ok('standby-from-backup.yml', ['-i', underDb2, '-p', 'host=db1', '--yes']);
    expect(await eventually(() => streamingFrom('db2'), (v) => v === 'db1|streaming,db3|streaming,db4|streaming')).toBe('db1|streaming,db3|streaming,db4|streaming');
    await cutOff('db1', 'db2');
    await psql('db2', 'INSERT INTO guarded SELECT generate_series(2001, 2050)');
    for (const h of ['db3', 'db4'] as const) expect(await eventually(() => count(h), (x) => x.stdout === '151')).toMatchObject({ stdout: '151' });
    expect((await count('db1')).stdout).toBe('101');
    expect((await pgCtl('db2', 'stop', '-m', 'immediate', '-w')).exitCode).toBe(0);
    await reconnect('db1');

    const r = await lab.run('promote.yml', ['-i', underDb2, '-p', 'candidate=db1', '-p', 'allow_data_loss=true', '-p', 'follow_timeout=10s', '--yes']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(1);
    expect(results(r.events)).toEqual(expect.arrayContaining(['promote@db1=changed', 'stragglers-rebuilt@db3=failed', 'stragglers-rebuilt@db4=failed']));
    expect(results(r.events).filter((x) => x.startsWith('rebuild-stragglers['))).toEqual([]);
    for (const h of ['db3', 'db4']) {
      const failed = stepResult(r.events, 'stragglers-rebuilt', h) as JsonEvent & { error?: { message: string } };
      expect(failed.error!.message).toContain(`${h} does not stream from db1 on its new timeline`);
      expect(failed.error!.message).toContain(`pgplay run standby-from-backup.yml -p host=${h} -p rebuild=true --yes`);
    }
    expect(stepResult(r.events, 'stragglers', 'db1')).toBeDefined();
    expect(await recoveryStates()).toEqual({ db1: 'f', db2: 'down', db3: 't', db4: 't' });
    expect(await psql('db1', 'SELECT count(*) FROM guarded')).toBe('101');
  }, 400_000);
});
