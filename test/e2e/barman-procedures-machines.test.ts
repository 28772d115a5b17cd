/**
 * restore.yml and promote.yml with backup.tool barman on separate machines (issue 13 item 1), subnet
 * 127.0.61.x: a repository machine bk1 with Debian's Barman 3.4 (no PostgreSQL), a primary db1 and a
 * standby db2 with Debian's PostgreSQL 15, reached over SSH with an inventory as a DBA writes it (no host
 * vars). Its own small rig (no drill host, no rsync server) rather than more tests in barman-machines.test.ts,
 * which takes over three minutes already: the two files run in parallel in CI. The tests run in order:
 *
 * - restore.yml in place on db1 to a restore point: barman recover of the backup pitr_target chose, Barman's
 *   WAL replayed to the point (rows as they were there), the same system identifier on a new timeline,
 *   Barman following the restored primary and a new Barman backup of the new timeline, db2 rebuilt from
 *   it and streaming.
 * - switchover.yml -p candidate=db2: Barman's server follows db2 (config, slot, receive-wal), the raw barman
 *   check passes against db2, db1 streams from db2 with barman-wal-restore as its restore_command and without
 *   the Barman slot it had as the primary; with the inventory naming db2 the primary, nightly-backup takes a
 *   backup of db2 that Barman lists on db2's timeline.
 * - promote.yml -p candidate=db1 (db2 the primary since the switchover): Barman's server follows db1 (config,
 *   slot, receive-wal), barman check passes against db1; with the inventory naming db1 the primary,
 *   nightly-backup takes a backup of db1 that Barman lists on db1's timeline.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreReport } from '../../src/report/restore.js';
import { runCli } from '../support/cli.js';
import { CONFIG_DIR, startMachines, type Machine, type Machines } from '../support/machines.js';
import { eventually, events, results, type JsonEvent } from './lab-helpers.js';

const SUBNET = '127.0.61';
const PLAYBOOKS = resolve('playbooks');

type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };

interface ListedBackup {
  backup_id: string;
  status: string;
}

describe('restore.yml and promote.yml with backup.tool barman on separate machines', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  let inventory: string;
  const started = Date.now();
  const barmanPassword = `bm-${randomBytes(12).toString('hex')}`;
  const replicationPassword = `repl-${randomBytes(12).toString('hex')}`;
  const env = { PGPLAY_BARMAN_PASSWORD: barmanPassword, PGPLAY_REPLICATION_PASSWORD: replicationPassword };
  const m = (name: 'db1' | 'db2' | 'bk1'): Machine => rig.machines[name]!;

  async function sh(x: Machine, script: string, user?: string): Promise<string> {
    const r = await x.exec(['sh', '-ec', script], { user });
    if (r.exitCode !== 0) throw new Error(`on ${x.name}: ${script}\nexited ${r.exitCode}: ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  }

  /** As a DBA writes it for Debian hosts: no pgdata, no host vars. */
  async function writeInventory(file: string, primary: 'db1' | 'db2'): Promise<string> {
    const standby = primary === 'db1' ? 'db2' : 'db1';
    const inv = {
      cluster: 'main',
      postgres: { version: 15, layout: 'debian' },
      connection: { transport: 'ssh', user: 'root', port: 22, identityFile: rig.identityFile, knownHosts: rig.knownHosts, agent: false, become: 'postgres' },
      replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' } },
      backup: {
        tool: 'barman',
        repoHost: 'bk1',
        barman: { method: 'postgres', password: { env: 'PGPLAY_BARMAN_PASSWORD' }, retention: { redundancy: 3 }, minimumRedundancy: 1, lastBackupMaximumAgeDays: 1 },
      },
      hosts: {
        [primary]: { address: m(primary).address, role: 'primary' },
        [standby]: { address: m(standby).address, role: 'standby', upstream: primary },
        bk1: { address: m('bk1').address, role: 'repository' },
      },
    };
    const path = join(work, file);
    await writeFile(path, stringify(inv));
    return path;
  }

  async function run(playbook: string, inv: string, args: string[] = []): Promise<RunOutcome> {
    const r = await runCli(['run', join(PLAYBOOKS, playbook), '-i', inv, '--output', 'json', '--state-dir', stateDir, ...args], { env });
    return { ...r, events: events(r.stdout) };
  }
  const failure = (r: RunOutcome) =>
    `exit ${r.exitCode}\n${r.events
      .filter((e) => e.type === 'step-result' && e.status !== 'ok' && e.status !== 'skipped')
      .map((e) => `${e.step}@${e.host}=${e.status}: ${String((e as { msg?: string }).msg ?? '').slice(0, 400)}`)
      .join('\n')}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`;

  const barman = (args: string) => sh(m('bk1'), `barman ${args}`, 'barman');
  async function listBackups(): Promise<ListedBackup[]> {
    return (JSON.parse(await barman('-f json list-backups main')) as Record<string, ListedBackup[]>).main ?? [];
  }
  /** The timeline a Barman backup was taken on (show-backup's base backup information). */
  async function backupTimeline(id: string): Promise<number> {
    const shown = JSON.parse(await barman(`-f json show-backup main ${id}`)) as Record<string, { base_backup_information: { timeline: number } }>;
    return shown.main!.base_backup_information.timeline;
  }
  const systemId = (x: Machine) => x.psql('SELECT system_identifier::text FROM pg_control_system()');
  const timelineOf = async (x: Machine) => Number(await x.psql('SELECT timeline_id FROM pg_control_checkpoint()'));

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.3`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-barman-procedures-'));
    stateDir = join(work, 'state');
    inventory = await writeInventory('inventory.yml', 'db1');
    // The globals export of nightly-backup logs in from the repository host as the superuser.
    const superuserPassword = `su-${randomBytes(12).toString('hex')}`;
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    await sh(m('bk1'), `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    await m('db1').psql('CREATE TABLE rows_before AS SELECT g AS id FROM generate_series(1, 100) AS g');
    // The package's fresh cluster on the standby-to-be: stopped, as the README tells the DBA.
    await sh(m('db2'), 'pg_ctlcluster 15 main stop');
    for (const [playbook, args] of [
      ['prepare.yml', ['--yes']],
      ['nightly-backup.yml', ['--yes']],
      ['standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']],
    ] as const) {
      const r = await run(playbook, inventory, [...args]);
      if (r.exitCode !== 0) throw new Error(`${playbook}: ${failure(r)}`);
    }
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
  }, 400_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`barman-procedures-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('restore.yml in place on db1 to a restore point: barman recover, the rows of the point, the same system on a new timeline, a new Barman backup, db2 streaming', async () => {
    const db1 = m('db1');
    const sysid = await systemId(db1);
    const oldTimeline = await timelineOf(db1);
    await db1.psql('CREATE TABLE precious AS SELECT g AS id FROM generate_series(1, 1234) AS g');
    await db1.psql("SELECT pg_create_restore_point('before_drop')");
    await db1.psql('DROP TABLE precious');
    await db1.psql('INSERT INTO rows_before SELECT generate_series(101, 150)');
    // The restore point's segment reaches Barman (as a DBA would make sure before restoring).
    await barman('switch-wal --force --archive main');
    const before = await listBackups();

    const r = await run('restore.yml', inventory, ['-p', 'host=db1', '-p', 'target=name', '-p', 'target_value=before_drop', '-p', 'in_place=confirmed', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['restore-barman/recover@db1=changed', 'restore-barman/recovery/name@db1=changed', 'barman-follows/backup@bk1=changed']),
    );
    // pgBackRest's steps (include/backup/pgbackrest/, skipped as a whole) never ran.
    expect(results(r.events).filter((e) => /(^|\/)pgbackrest/.test(e) && !e.endsWith('=skipped'))).toEqual([]);

    // The cluster as it was at the restore point, read-write, the same system on a new timeline.
    expect(await db1.psql('SELECT count(*) FROM precious')).toBe('1234');
    expect(await db1.psql('SELECT count(*) FROM rows_before')).toBe('100');
    expect(await db1.psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await systemId(db1)).toBe(sysid);
    const timeline = await timelineOf(db1);
    expect(timeline).toBeGreaterThan(oldTimeline);
    // The recovery settings pgplay wrote are gone; the restored primary archives to Barman.
    expect(await sh(db1, `test -e ${CONFIG_DIR}/conf.d/pgplay-recovery.conf && echo present || echo absent`)).toBe('absent');
    expect(await db1.psql("SELECT current_setting('archive_command')")).toBe(`barman-wal-archive ${m('bk1').address} main %p`);

    // Barman follows the restored primary and holds a backup of its new timeline.
    const after = await listBackups();
    expect(after.length).toBe(before.length + 1);
    expect(await backupTimeline(after[0]!.backup_id)).toBe(timeline);
    expect(await db1.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('t');
    expect(await barman('check main')).not.toContain('FAILED');

    const runId = (JSON.parse(r.stdout.split('\n')[0]!) as { runId: string }).runId;
    const report = JSON.parse(await readFile(join(stateDir, 'restores', `${runId}.json`), 'utf8')) as RestoreReport;
    expect(report).toMatchObject({ status: 'passed', host: 'db1', target: { type: 'name', value: 'before_drop' }, target_reached: true, timeline, standbys: ['db2'] });
    expect(report.backup.set).toBe(before[0]!.backup_id);
    expect(report.new_backup).toContain(after[0]!.backup_id);

    // db2 was rebuilt from the new backup and streams from db1 on its timeline.
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => m('db2').psql('SELECT received_tli FROM pg_stat_wal_receiver'), (v) => v === String(timeline))).toBe(String(timeline));
    expect(await eventually(() => m('db2').psql("SELECT count(*) FROM pg_class WHERE relname = 'precious'"), (v) => v === '1')).toBe('1');
  }, 400_000);

  it('switchover.yml -p candidate=db2: Barman follows db2 (barman check exit 0), db1 streams from db2 with barman-wal-restore and without its Barman slot; nightly-backup backs up db2 on its timeline', async () => {
    const [db1, db2, bk1] = [m('db1'), m('db2'), m('bk1')];
    await db1.psql("CREATE TABLE before_switchover AS SELECT 'written on db1'::text AS note");
    // db1, the primary, holds Barman's slot: its receive-wal streams through it.
    expect(await db1.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('t');

    const r = await run('switchover.yml', inventory, ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['backup/barman/receive-wal@bk1=changed', 'backup/barman/check@bk1=ok', 'rejoin-barman-slot/drop@db1=changed']),
    );
    expect(await db2.psql('SELECT pg_is_in_recovery()')).toBe('f');
    const timeline = await timelineOf(db2);

    // db1 is db2's standby, streaming on the new timeline, and fetches what streaming lacks from Barman.
    expect(await db1.psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => db1.psql("SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver"), (v) => v === `streaming ${timeline}`)).toBe(`streaming ${timeline}`);
    const restoreCommand = await db1.psql("SELECT current_setting('restore_command')");
    expect(restoreCommand).toBe(`barman-wal-restore ${bk1.address} main %f "%p"`);
    // It works: the new timeline's history file comes from Barman through it (as the PostgreSQL OS user).
    const history = `${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
    await sh(db1, restoreCommand.replace('%f', history).replace('%p', '/tmp/pgplay-restore-command-check'), 'postgres');
    expect(await sh(db1, 'head -c 1 /tmp/pgplay-restore-command-check && rm /tmp/pgplay-restore-command-check')).toMatch(/^\d$/);
    // Barman's slot stays with the primary: on the standby db1 it would retain WAL for nobody.
    expect(await db1.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('0');

    // Barman's server names db2, streams from its slot there, and every check passes against it.
    const conf = await sh(bk1, 'cat /etc/barman.d/main.conf');
    expect(conf).toContain(`conninfo = host=${db2.address} port=5432 user=barman dbname=postgres`);
    expect(conf).not.toContain(db1.address);
    expect(await db2.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('t');
    expect(await db2.psql("SELECT current_setting('archive_command')")).toBe(`barman-wal-archive ${bk1.address} main %p`);
    const check = await bk1.exec(['barman', 'check', 'main'], { user: 'barman' });
    expect(check.exitCode, check.stdout).toBe(0);
    expect(check.stdout).not.toContain('FAILED');

    // The DBA's inventory after the switchover: db2 the primary. The next nightly backup backs up db2 on its timeline.
    const switched = await writeInventory('inventory-db2.yml', 'db2');
    const before = await listBackups();
    const nightly = await run('nightly-backup.yml', switched, ['--yes']);
    expect(nightly.exitCode, failure(nightly)).toBe(0);
    // One new backup (retention's REDUNDANCY 3 may have deleted the oldest meanwhile).
    const fresh = (await listBackups()).filter((b) => !before.some((o) => o.backup_id === b.backup_id));
    expect(fresh.map((b) => b.status)).toEqual(['DONE']);
    expect(await backupTimeline(fresh[0]!.backup_id)).toBe(timeline);
    expect(await db2.psql('SELECT count(*) FROM before_switchover')).toBe('1');
    expect(await eventually(() => db1.psql("SELECT count(*) FROM pg_class WHERE relname = 'before_switchover'"), (v) => v === '1')).toBe('1');
  }, 400_000);

  it('promote.yml -p candidate=db1: Barman follows db1 and barman check passes; nightly-backup then backs up db1 on its timeline', async () => {
    const db1 = m('db1');
    // db2 is the primary since the switchover.
    await m('db2').psql("CREATE TABLE before_promotion AS SELECT 'written on db2'::text AS note");

    const r = await run('promote.yml', join(work, 'inventory-db2.yml'), ['-p', 'candidate=db1', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['promote@db1=changed', 'barman-follows/receive-wal@bk1=changed', 'barman-follows/check@bk1=ok']));
    expect(await db1.psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await m('db2').postmasterPid()).toBeUndefined();
    const timeline = await timelineOf(db1);

    // Barman's server names db1, streams from its slot there, and every check passes against it.
    const conf = await sh(m('bk1'), 'cat /etc/barman.d/main.conf');
    expect(conf).toContain(`conninfo = host=${db1.address} port=5432 user=barman dbname=postgres`);
    expect(conf).toContain(`streaming_conninfo = host=${db1.address} port=5432 user=streaming_barman`);
    expect(conf).not.toContain(m('db2').address);
    expect(await db1.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman_main'")).toBe('t');
    expect(await db1.psql("SELECT current_setting('archive_command')")).toBe(`barman-wal-archive ${m('bk1').address} main %p`);
    const check = await m('bk1').exec(['barman', 'check', 'main'], { user: 'barman' });
    expect(check.exitCode, check.stdout).toBe(0);
    expect(check.stdout).not.toContain('FAILED');

    // The DBA's inventory after the promotion (pgplay printed the change): db1 the primary. The first
    // nightly backup after the promotion backs up db1 on its new timeline.
    const promoted = await writeInventory('inventory-db1.yml', 'db1');
    const before = await listBackups();
    const nightly = await run('nightly-backup.yml', promoted, ['--yes']);
    expect(nightly.exitCode, failure(nightly)).toBe(0);
    // One new backup (retention's REDUNDANCY 3 may have deleted the oldest meanwhile).
    const fresh = (await listBackups()).filter((b) => !before.some((o) => o.backup_id === b.backup_id));
    expect(fresh.map((b) => b.status)).toEqual(['DONE']);
    expect(await backupTimeline(fresh[0]!.backup_id)).toBe(timeline);
    expect(await db1.psql('SELECT count(*) FROM before_promotion')).toBe('1');
  }, 400_000);
});
