/**
 * Issue 12 item 4 on separate machines (test/support/machines.ts, subnet 127.0.52.x: no other file uses
 * it): rejoin.yml brings an old primary back after a failover with writes on both timelines, by pg_rewind
 * when it can work and by the delta restore when it cannot.
 *
 * db1 and db2 run Debian's PostgreSQL 15 (pg_createcluster, pg_ctlcluster), bk1 holds the pgBackRest
 * repository; the inventory is what a DBA writes (layout debian, no host vars) plus, as the README says
 * for pg_rewind, `wal_log_hints: on` in postgres.settings and the superuser's password in each database
 * host's ~postgres/.pgpass. One rig for the file, built in beforeAll: prepare, nightly-backup, db2 built
 * as db1's standby.
 *
 * 1. Split brain: db2 is promoted directly (pg_ctlcluster promote) while db1 still runs and takes rows
 *    db2 never sees; db1 is then fenced as promote.yml's fence leaves it (pgbackrest stop, clean stop).
 *    rejoin db1: pg_rewind (the report says so, with its time), db1 streams from db2, the rows only the
 *    old timeline had are gone, pgBackRest runs again on db1.
 * 2. The same the other way round with wal_log_hints off on db2 (and no data checksums): the report says
 *    pg_rewind was impossible and why, and the delta restore took over; db2 streams from db1.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RejoinReport } from '../../src/report/rejoin.js';
import { runCli } from '../support/cli.js';
import { PG_VERSION, startMachines, type Machine, type Machines } from '../support/machines.js';
import { eventually, events, results, type JsonEvent } from './lab-helpers.js';

const PLAYBOOKS = resolve('playbooks');
const SUBNET = '127.0.52';

type Db = 'db1' | 'db2';
type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };

describe('rejoin.yml after a failover with writes on both timelines (separate Debian machines)', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  const started = Date.now();
  const env = { PGPLAY_REPLICATION_PASSWORD: `repl-${randomBytes(12).toString('hex')}` };
  const superuserPassword = `su-${randomBytes(12).toString('hex')}`;

  const m = (name: Db | 'bk1'): Machine => rig.machines[name]!;
  const other = (db: Db): Db => (db === 'db1' ? 'db2' : 'db1');

  async function sh(x: Machine, script: string, user?: string): Promise<string> {
    const r = await x.exec(['sh', '-ec', script], { user });
    if (r.exitCode !== 0) throw new Error(`on ${x.name}: ${script}\nexited ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  }
  const ctl = (x: Machine, verb: 'stop' | 'start' | 'restart' | 'promote') => sh(x, `pg_ctlcluster ${PG_VERSION} main ${verb}`);

  /** The inventory a DBA keeps: after a failover they make the new primary primary and the old one its standby. */
  async function writeInventory(primary: Db): Promise<string> {
    const file = join(work, `inventory-${primary}.yml`);
    const inv = {
      cluster: 'main',
      postgres: { version: PG_VERSION, layout: 'debian', settings: { wal_log_hints: 'on' } },
      connection: { transport: 'ssh', user: 'root', port: 22, identityFile: rig.identityFile, knownHosts: rig.knownHosts, hostKeyChecking: 'strict', agent: false, become: 'postgres' },
      replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' }, slots: true },
      backup: { tool: 'pgbackrest', repoHost: 'bk1', repoPath: '/var/lib/pgbackrest', retention: { full: 2 } },
      hosts: {
        [primary]: { address: m(primary).address, role: 'primary' },
        [other(primary)]: { address: m(other(primary)).address, role: 'standby', upstream: primary },
        bk1: { address: m('bk1').address, role: 'repository' },
      },
    };
    await writeFile(file, stringify(inv));
    return file;
  }

  async function run(playbook: string, inventory: string, args: string[] = []): Promise<RunOutcome> {
    const r = await runCli(['run', join(PLAYBOOKS, playbook), '-i', inventory, '--output', 'json', '--state-dir', stateDir, ...args], { env });
    return { ...r, events: events(r.stdout) };
  }
  const failure = (r: RunOutcome) => `exit ${r.exitCode}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`;

  /** The split brain: `to` is promoted behind pgplay's back while `from` still runs and takes writes. */
  async function splitBrain(from: Db, to: Db, tag: string): Promise<{ onlyOld: number; onlyNew: number }> {
    await m(from).psql(`INSERT INTO rejoin_rows (note) SELECT 'before ${tag}' FROM generate_series(1, 20)`);
    const lsn = await m(from).psql('SELECT pg_current_wal_lsn()');
    expect(await eventually(() => m(to).psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`), (v) => v === 't', 60_000)).toBe('t');
    await ctl(m(to), 'promote');
    expect(await eventually(() => m(to).psql('SELECT pg_is_in_recovery()'), (v) => v === 'f', 60_000)).toBe('f');
    // Both run read-write now: each takes rows the other never sees.
    await m(from).psql(`INSERT INTO rejoin_rows (note) SELECT 'old timeline only ${tag}' FROM generate_series(1, 5)`);
    await m(to).psql(`INSERT INTO rejoin_rows (note) SELECT 'new timeline ${tag}' FROM generate_series(1, 7)`);
    return { onlyOld: 5, onlyNew: 7 };
  }

  async function report(file: string): Promise<RejoinReport> {
    return JSON.parse(await readFile(file, 'utf8')) as RejoinReport;
  }

  /** What must hold after a rejoin of `old` to `primary`: one read-write server, `old` streams from it with its rows and none of the old timeline's. */
  async function expectRejoined(old: Db, primary: Db, tag: string, rows: { onlyNew: number }): Promise<void> {
    expect(await m(primary).psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await m(old).psql('SELECT pg_is_in_recovery()')).toBe('t');
    const streaming = await eventually(() => m(primary).psql("SELECT string_agg(application_name || ':' || state, ',') FROM pg_stat_replication"), (v) => v === `${old}:streaming`, 60_000);
    expect(streaming).toBe(`${old}:streaming`);
    await m(primary).psql(`INSERT INTO rejoin_rows (note) VALUES ('after rejoin ${tag}')`);
    const lsn = await m(primary).psql('SELECT pg_current_wal_lsn()');
    expect(await eventually(() => m(old).psql(`SELECT pg_last_wal_replay_lsn() >= '${lsn}'`), (v) => v === 't', 60_000)).toBe('t');
    expect(await m(old).psql(`SELECT count(*) FROM rejoin_rows WHERE note = 'old timeline only ${tag}'`)).toBe('0');
    expect(await m(old).psql(`SELECT count(*) FROM rejoin_rows WHERE note = 'new timeline ${tag}'`)).toBe(String(rows.onlyNew));
    expect(await m(old).psql(`SELECT count(*) FROM rejoin_rows WHERE note = 'after rejoin ${tag}'`)).toBe('1');
    expect(await m(old).psql('SELECT count(*) FROM rejoin_rows')).toBe(await m(primary).psql('SELECT count(*) FROM rejoin_rows'));
  }

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.3`, postgres: false },
    ]);
    console.log(`rejoin-machines: 3 machines up in ${rig.startupMs} ms`);
    work = await mkdtemp(join(tmpdir(), 'pgplay-rejoin-machines-'));
    stateDir = join(work, 'state');
    // What the DBA provides for pg_rewind (README): the superuser's password, in ~postgres/.pgpass on each database host.
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    for (const name of ['db1', 'db2', 'bk1'] as const) {
      await sh(m(name), `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    }
    // The package's fresh cluster on the standby-to-be is stopped first (README).
    await ctl(m('db2'), 'stop');
    const inventory = await writeInventory('db1');
    for (const [playbook, args] of [
      ['prepare.yml', ['--yes']],
      ['nightly-backup.yml', ['--yes']],
      ['standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']],
    ] as const) {
      const r = await run(playbook, inventory, [...args]);
      if (r.exitCode !== 0) throw new Error(`${playbook}: ${failure(r)}`);
    }
    expect(await m('db1').psql('SHOW wal_log_hints')).toBe('on');
    expect(await m('db2').psql('SHOW wal_log_hints')).toBe('on');
    await m('db1').psql('CREATE TABLE rejoin_rows (id bigserial PRIMARY KEY, note text NOT NULL)');
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`rejoin-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('wal_log_hints on: pg_rewind brings db1 back; it streams from db2, the old timeline\'s rows are gone, pgBackRest runs again on db1', async () => {
    const rows = await splitBrain('db1', 'db2', 'one');
    // The fence as promote.yml leaves the old primary: pgBackRest stopped on it, the server cleanly stopped.
    await sh(m('db1'), 'pgbackrest --stanza=main stop', 'postgres');
    await ctl(m('db1'), 'stop');
    const sysidBefore = await sh(m('db1'), `LC_ALL=C /usr/lib/postgresql/${PG_VERSION}/bin/pg_controldata -D ${m('db1').pgdata} | sed -n 's/^Database system identifier: *//p'`, 'postgres');

    const file = join(work, 'rejoin-db1.json');
    const r = await run('rejoin.yml', await writeInventory('db2'), ['-p', 'host=db1', '--yes', '--report', file]);
    expect(r.exitCode, failure(r)).toBe(0);
    const rep = await report(file);
    expect(rep).toMatchObject({ host: 'db1', path: 'rewind', rewind: { attempted: true, rewound: true, reasons: [] }, restore: { ran: false, ms: null }, streaming: true });
    expect(rep.rewind.ms).toBeGreaterThan(0);
    expect(rep.total_ms).toBeGreaterThanOrEqual(rep.rewind.ms!);
    expect(results(r.events)).toEqual(expect.arrayContaining(['rejoin/pgbackrest-start@db1=changed', 'rejoin/rewind@db1=changed', 'rejoin/build/restore@db1=skipped', 'rejoin/build/start@db1=changed']));
    // The same cluster, rewound, not replaced by a restore.
    expect(await m('db1').psql('SELECT system_identifier FROM pg_control_system()')).toBe(sysidBefore);
    await expectRejoined('db1', 'db2', 'one', rows);
    // pgBackRest archives from db1 again: its stop file is gone.
    expect(await sh(m('db1'), 'pgbackrest --stanza=main start 2>&1', 'postgres')).toContain('stop file does not exist');

    // A second run finds it streaming and changes nothing.
    const again = await run('rejoin.yml', await writeInventory('db2'), ['-p', 'host=db1', '--yes']);
    expect(again.exitCode, failure(again)).toBe(0);
    expect(again.events.filter((e) => e.type === 'step-result' && e.status === 'changed').map((e) => `${e.step}@${e.host}`)).toEqual([]);
  }, 600_000);

  it('wal_log_hints off and no data checksums: the report says pg_rewind was impossible and the delta restore took over; db2 streams from db1', async () => {
    // db2, the primary now, runs without wal_log_hints (a cluster set up without it).
    await m('db2').psql('ALTER SYSTEM SET wal_log_hints = off');
    await ctl(m('db2'), 'restart');
    expect(await m('db2').psql("SELECT current_setting('wal_log_hints') || ' ' || current_setting('data_checksums')")).toBe('off off');
    expect(await eventually(() => m('db2').psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"), (v) => v === '1', 60_000)).toBe('1');

    const rows = await splitBrain('db2', 'db1', 'two');
    await ctl(m('db2'), 'stop');

    const file = join(work, 'rejoin-db2.json');
    const r = await run('rejoin.yml', await writeInventory('db1'), ['-p', 'host=db2', '--yes', '--report', file]);
    expect(r.exitCode, failure(r)).toBe(0);
    const rep = await report(file);
    expect(rep).toMatchObject({ host: 'db2', path: 'restore', rewind: { attempted: false, rewound: false }, restore: { ran: true }, streaming: true });
    expect(rep.rewind.reasons.join('\n')).toContain('wal_log_hints was off when the server last ran and the cluster has no data checksums');
    expect(rep.restore.ms).toBeGreaterThan(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['rejoin/rewind@db2=ok', 'rejoin/build/restore@db2=changed']));
    await expectRejoined('db2', 'db1', 'two', rows);
  }, 600_000);
});
