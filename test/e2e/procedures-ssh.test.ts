/**
 * The shipped procedures over SSH against real PostgreSQL 15 and pgBackRest: the lab comes up as the
 * local suite's does, then its inventory is rewritten so that every host is a remote machine at its own
 * loopback address behind the sshd rig. nightly-backup, standby-from-backup, pitr-drill and promote run
 * through the CLI against that inventory and must end as they do locally; sshd's log proves that the
 * runs went over SSH, one connection per host and run.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chown, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/model/inventory.js';
import type { DrillReport } from '../../src/report/drill.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import { connectionsPerAddress, logSince, sessionsLeft } from './fixtures/ssh/support.js';
import { sshLabInventory } from './fixtures/procedures-ssh/inventory.js';
import { startPostgresSsh, type PostgresSsh } from './fixtures/procedures-ssh/postgres-ssh.js';
import { changedSteps, createLab, eventually, labUp, results, type JsonEvent, type LabHost, type RunResult, type TestLab } from './lab-helpers.js';

const ADDRESSES = { db1: '127.0.0.2', db2: '127.0.0.3', bk1: '127.0.0.4', drill1: '127.0.0.5' } as const;
/** Every run gathers facts on every host: one SSH connection each, for the whole run. */
const ONE_EACH = Object.fromEntries(Object.values(ADDRESSES).map((a) => [a, 1]));

const postgresId = async (flag: '-u' | '-g') => Number((await execa('id', [flag, 'postgres'])).stdout.trim());
const postgresUid = () => postgresId('-u');

async function writePostgresFile(path: string, text: string, mode: number): Promise<void> {
  await writeFile(path, text, { mode });
  await chown(path, await postgresId('-u'), await postgresId('-g'));
}

async function modeAndOwner(path: string): Promise<{ mode: number; uid: number }> {
  const st = await stat(path);
  return { mode: st.mode & 0o777, uid: st.uid };
}

describe('the shipped procedures over SSH (PostgreSQL 15, pgBackRest 2.45, every lab host behind sshd)', () => {
  let sshd: Sshd;
  let postgresSsh: PostgresSsh;
  let lab: TestLab;
  let inventory: string;

  /** pgplay run <playbook> against the SSH inventory; also what sshd logged meanwhile. */
  async function run(playbook: string, args: string[] = []): Promise<RunResult & { events: JsonEvent[]; connections: Record<string, number> }> {
    const mark = sshd.logs().length;
    const r = await lab.run(playbook, ['-i', inventory, ...args]);
    return { ...r, connections: connectionsPerAddress(logSince(sshd, mark), sshd.port) };
  }

  const failure = (r: RunResult) => `exit ${r.exitCode}\n${r.stdout.slice(-4000)}\n${r.stderr}`;
  const streamingFrom = (upstream: LabHost) => lab.psql(upstream, 'SELECT application_name, state FROM pg_stat_replication ORDER BY 1');

  beforeAll(async () => {
    sshd = await startSshd({ addresses: Object.values(ADDRESSES) });
    postgresSsh = await startPostgresSsh(sshd);
    lab = await createLab(26050, 'procedures-ssh');
    await labUp(lab);
    // Over SSH the repository host reaches the primary over TCP, not through its socket: pg_dumpall -g
    // then logs in as the superuser with a password from bk1's .pgpass, as on separate machines.
    const superuserPassword = randomBytes(12).toString('base64url');
    await lab.psql('db1', `ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    await writePostgresFile(join(lab.dir, 'bk1', 'pgpass'), `*:*:*:postgres:${superuserPassword}\n`, 0o600);
    const local = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8')) as Inventory;
    inventory = join(lab.dir, 'inventory-ssh.yml');
    await writeFile(inventory, stringify(sshLabInventory(local, { sshd, addresses: ADDRESSES, cmdSsh: postgresSsh.cmdSsh })));
  });

  afterAll(async () => {
    await lab?.down();
    await postgresSsh?.stop();
    await sshd?.stop();
  });

  it('nightly-backup: the stanza is there, check passes, a full backup shows in info; one connection per host', async () => {
    // Over SSH the primary listens on its own address: the first run restarts it, which only --yes confirms.
    const r = await run('nightly-backup.yml', ['--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['pgbackrest/stanza@bk1=ok', 'pgbackrest/check@bk1=ok', 'pgbackrest/backup-full@bk1=changed', 'pgbackrest/backup-changes@bk1=skipped', 'pgbackrest/verify@bk1=ok', 'globals@bk1=changed']),
    );
    const info = await lab.pgbackrestInfo();
    expect(info.status).toMatchObject({ code: 0, message: 'ok' });
    expect(info.backup.map((b) => b.type)).toEqual(['full']);
    expect(r.connections).toEqual(ONE_EACH);
    expect(await sessionsLeft(sshd)).toEqual([]);

    // The repository host reaches the database hosts as remote pgBackRest peers, each started with its
    // own pgbackrest.conf, and the primary pushes WAL to the repository host the same way.
    const bk1Conf = await readFile(join(lab.dir, 'bk1', 'pgbackrest.conf'), 'utf8');
    expect(bk1Conf).toContain(`\npg1-host=${ADDRESSES.db1}\npg1-host-user=postgres\npg1-host-config=${join(lab.dir, 'db1', 'pgbackrest.conf')}\n`);
    expect(bk1Conf).toContain(`\npg3-host=${ADDRESSES.db2}\n`);
    const db1Conf = await readFile(join(lab.dir, 'db1', 'pgbackrest.conf'), 'utf8');
    expect(db1Conf).toContain(`\nrepo1-host=${ADDRESSES.bk1}\nrepo1-host-user=postgres\nrepo1-host-config=${join(lab.dir, 'bk1', 'pgbackrest.conf')}\n`);
    expect(db1Conf).not.toContain('repo1-path');
    const hops = connectionsPerAddress(postgresSsh.logs(), postgresSsh.port);
    expect(hops[ADDRESSES.db1]).toBeGreaterThan(0);
    expect(hops[ADDRESSES.bk1]).toBeGreaterThan(0);
    expect(postgresSsh.logs()).toMatch(/Accepted publickey for postgres from 127\.0\.0\.1/);

    // pg_dumpall -g reached the primary over TCP with the superuser password from bk1's .pgpass.
    const globals = (await readdir(join(lab.dir, 'bk1', 'globals'))).filter((f) => /^globals-\d{8}T\d{6}Z\.sql$/.test(f));
    expect(globals).toHaveLength(1);
    const dump = join(lab.dir, 'bk1', 'globals', globals[0]!);
    expect(await readFile(dump, 'utf8')).toMatch(/CREATE ROLE replicator;\nALTER ROLE replicator WITH .*REPLICATION/);
    expect(await modeAndOwner(dump)).toEqual({ mode: 0o600, uid: await postgresUid() });
  });

  it('nightly-backup again: only the backup itself and the globals export change', async () => {
    const r = await run('nightly-backup.yml');
    expect(r.exitCode, failure(r)).toBe(0);
    expect(changedSteps(r.events)).toEqual(['pgbackrest/backup-changes@bk1', 'globals@bk1']);
    expect((await lab.pgbackrestInfo()).backup.map((b) => b.type)).toEqual(['full', 'incr']);
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('standby-from-backup builds db2 from the repository: in recovery, streaming from db1', async () => {
    // The hosts have other addresses over SSH than in the lab: prepare.yml puts db2's and bk1's in db1's
    // pg_hba block (standby-from-backup refuses, naming prepare.yml, until then).
    const prepared = await run('prepare.yml', ['--yes']);
    expect(prepared.exitCode, failure(prepared)).toBe(0);
    const r = await run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['build/pgbackrest/restore@db2=changed', 'build/slot@db1=changed', 'build/start@db2=changed', 'build/streaming@db1=ok']),
    );
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await streamingFrom('db1')).toBe('db2|streaming');
    // The standby follows db1 at db1's own address, not the lab's shared 127.0.0.1.
    expect(await lab.psql('db2', 'SHOW primary_conninfo')).toContain(`host=${ADDRESSES.db1} port=${lab.port('db1')}`);
    const pgpass = join(lab.dir, 'db2', 'pgpass');
    const secret = (await readFile(join(lab.dir, 'secrets', 'replication-password'), 'utf8')).trim();
    expect(await readFile(pgpass, 'utf8')).toBe(`${ADDRESSES.db1}:${lab.port('db1')}:replication:replicator:${secret}\n`);
    expect(await modeAndOwner(pgpass)).toEqual({ mode: 0o600, uid: await postgresUid() });
    expect(r.stdout).not.toContain(secret);
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('a row written on db1 appears on db2', async () => {
    await lab.psql('db1', "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'written on db1')");
    expect(await eventually(() => lab.tryPsql('db2', 'SELECT item FROM orders WHERE id = 1'), (x) => x.stdout === 'written on db1')).toMatchObject({
      stdout: 'written on db1',
    });
  });

  it('standby-from-backup again changes nothing', async () => {
    const r = await run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(changedSteps(r.events)).toEqual([]);
    expect(results(r.events)).toContain('build/pgbackrest/restore@db2=skipped');
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('pitr-drill brings a dropped table back in the scratch instance on drill1; the report says the target was reached', async () => {
    await lab.psql('db1', "CREATE TABLE pitr_demo (id int, note text); INSERT INTO pitr_demo VALUES (1, 'before the mistake')");
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    await lab.psql('db1', 'DROP TABLE pitr_demo');
    const reportFile = join(lab.dir, '..', 'drill.json');
    const checks = JSON.stringify([{ sql: 'SELECT note FROM pitr_demo', expect: 'before the mistake' }]);
    const r = await run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', `checks=${checks}`, '-p', 'keep=true', '--report', reportFile, '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(results(r.events)).toEqual(expect.arrayContaining(['pgbackrest/restore-target@drill1=changed', 'start@drill1=changed', 'verdict@drill1=ok']));
    // The copy was kept: the table is back there, while the primary still has it dropped.
    expect(await lab.psql('drill1', 'SELECT note FROM pitr_demo')).toBe('before the mistake');
    expect(await lab.psql('drill1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db1', "SELECT to_regclass('public.pitr_demo') IS NULL")).toBe('t');
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', host: 'drill1', target: { type: 'name', value: 'before-drop' }, target_reached: true, teardown: 'kept' });
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['before the mistake:true']);
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('promote makes db2 the primary on a new timeline, fences db1, and backs up on the new timeline', async () => {
    const r = await run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(r.stderr).toBe('');
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['fence@db1=changed', 'caught-up@db2=ok', 'promote@db2=changed', 'read-write@db2=ok', 'pgbackrest/backup@bk1=changed']),
    );
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery(), (SELECT timeline_id FROM pg_control_checkpoint())')).toBe('f|2');
    await lab.psql('db2', "INSERT INTO orders VALUES (2, 'written on db2')");
    expect(await lab.psql('db2', 'SELECT count(*) FROM orders')).toBe('2');
    expect(await lab.postmasterPid('db1')).toBeUndefined();
    const newest = (await lab.pgbackrestInfo()).backup.at(-1)!;
    expect(newest.type).toBe('full');
    expect(newest.archive.start.slice(0, 8)).toBe('00000002');
    expect(r.connections).toEqual(ONE_EACH);
    expect(await sessionsLeft(sshd)).toEqual([]);
  });
});
