/**
 * Issue 12 item 5: a planned switchover with zero data loss, on separate machines (test/support/machines.ts,
 * subnet 127.0.53.x: no other file uses it): db1 the primary, db2 its standby, bk1 the pgBackRest
 * repository, an inventory as the README's "From the lab to your servers" writes it. Built once for the file
 * with the shipped procedures (prepare, nightly-backup, standby-from-backup).
 *
 * - switchover.yml -p candidate=db2 under a running pgbench (Debian's pgbench, a custom script inserting one
 *   row per transaction, a new connection per transaction to "whichever of db1, db2 is read-write"): db2 the
 *   primary on a new timeline, db1 its streaming standby without a rewind or a restore (same system identifier,
 *   standby.signal, primary_conninfo to db2), a new full backup on the new timeline; then the switch back to
 *   db1. The rows on the server equal the transactions pgbench counted as committed (at most one more per
 *   connection that was cut while its commit was in flight): nothing committed is lost.
 * - a preflight refusal: the primary's max_connections raised above the candidate's: exit 3 naming the
 *   setting, no step changed anything, both servers as they were (same postmaster pids).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { startMachines, type Machine, type Machines } from '../support/machines.js';
import { readmeInventory } from './fixtures/rig-procedures/readme-inventory.js';
import { changedSteps, eventually, events, results, type JsonEvent } from './lab-helpers.js';

const PLAYBOOKS = resolve('playbooks');
const SUBNET = '127.0.53';
const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };

/** pgbench in short rounds until stopped: what it counted as committed, and how many connections it lost. */
class Load {
  committed = 0;
  /** Clients pgbench aborted (a cut connection): each may have had one commit in flight. */
  aborted = 0;
  rounds = 0;
  private stopped = false;
  private loop?: Promise<void>;

  constructor(private readonly script: string, private readonly password: string) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) await this.round();
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  /** One pgbench run: 2 clients, 20 transactions each, a new connection per transaction to the read-write server. */
  private async round(): Promise<void> {
    const conninfo = `host=${SUBNET}.1,${SUBNET}.2 port=5432,5432 dbname=postgres user=postgres target_session_attrs=read-write connect_timeout=2`;
    const r = await execa(PGBENCH, ['-n', '-C', '-c', '2', '-t', '20', '-f', this.script, conninfo], {
      reject: false,
      env: { PGPASSWORD: this.password },
    });
    this.rounds++;
    const processed = /number of transactions actually processed: (\d+)/.exec(r.stdout);
    this.committed += processed ? Number(processed[1]) : 0;
    this.aborted += (r.stderr.match(/client \d+ aborted/g) ?? []).length;
    // No server accepts writes (between the shutdown and the promotion): try again at once, pgbench's
    // connect fails fast on a closed port.
    if (!processed && !/connection to server .* failed|could not connect|server is in hot standby|read-write/i.test(r.stderr)) {
      throw new Error(`pgbench failed unexpectedly (exit ${r.exitCode}): ${r.stderr.slice(-1000)}`);
    }
  }
}

describe('switchover.yml on separate machines: zero data loss under pgbench, and a preflight refusal', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  const started = Date.now();
  const replicationPassword = `repl-${randomBytes(12).toString('hex')}`;
  const superuserPassword = `su-${randomBytes(12).toString('hex')}`;
  const env = { PGPLAY_REPLICATION_PASSWORD: replicationPassword };
  const m = (name: 'db1' | 'db2' | 'bk1'): Machine => rig.machines[name]!;
  const inventories: Record<'db1' | 'db2', string> = { db1: '', db2: '' };

  async function sh(x: Machine, script: string, user?: string): Promise<string> {
    const r = await x.exec(['sh', '-ec', script], { user });
    if (r.exitCode !== 0) throw new Error(`on ${x.name}: ${script}\nexited ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  }

  /** The README's inventory with the rig's addresses and keys; `primary` is the primary, the other its standby; no drill host. */
  async function writeInventory(primary: 'db1' | 'db2'): Promise<string> {
    const inv = await readmeInventory();
    const standby = primary === 'db1' ? 'db2' : 'db1';
    inv.connection = { ...inv.connection, identityFile: rig.identityFile, knownHosts: rig.knownHosts, agent: false };
    delete inv.hosts.drill1;
    for (const name of ['db1', 'db2', 'bk1'] as const) inv.hosts[name]!.address = m(name).address;
    inv.hosts[primary] = { address: m(primary).address, role: 'primary' };
    inv.hosts[standby] = { address: m(standby).address, role: 'standby', upstream: primary };
    const file = join(work, `inventory-${primary}.yml`);
    await writeFile(file, stringify(inv));
    return file;
  }

  async function run(playbook: string, primary: 'db1' | 'db2', args: string[]): Promise<RunOutcome> {
    const r = await runCli(['run', join(PLAYBOOKS, playbook), '-i', inventories[primary], '--output', 'json', '--state-dir', stateDir, ...args], { env });
    return { ...r, events: events(r.stdout) };
  }
  const failure = (r: RunOutcome) => `exit ${r.exitCode}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`;
  const sysid = (x: Machine) => x.psql('SELECT system_identifier FROM pg_control_system()');
  const newestBackup = async () => {
    const info = JSON.parse(await sh(m('bk1'), 'pgbackrest --stanza=main --output=json info', 'postgres')) as Array<{ backup: Array<{ type: string; archive: { start: string } }> }>;
    return info[0]!.backup.at(-1)!;
  };

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.3`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-switchover-'));
    stateDir = join(work, 'state');
    inventories.db1 = await writeInventory('db1');
    inventories.db2 = await writeInventory('db2');
    // As the README says: the superuser's password (the repository host's globals export and pgbench use it),
    // and the package's fresh cluster on the standby-to-be stopped.
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    await sh(m('bk1'), `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    // pgbench logs in over TCP as postgres with that password, from a loopback address.
    for (const name of ['db1', 'db2'] as const) {
      await sh(m(name), `printf '%s\\n' 'host all postgres 127.0.0.0/8 scram-sha-256' >> ${m(name).configDir}/pg_hba.conf`, 'postgres');
    }
    await sh(m('db1'), 'pg_ctlcluster 15 main reload');
    await sh(m('db2'), 'pg_ctlcluster 15 main stop');
    for (const [playbook, args] of [
      ['prepare.yml', ['--yes']],
      ['nightly-backup.yml', ['--yes']],
      ['standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']],
    ] as const) {
      const r = await run(playbook, 'db1', [...args]);
      if (r.exitCode !== 0) throw new Error(`${playbook}: ${failure(r)}`);
    }
    await m('db1').psql('CREATE TABLE bench_rows (id bigserial PRIMARY KEY, client int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
    console.log(`switchover-machines: rig and cluster ready in ${Math.round((Date.now() - started) / 1000)} s`);
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`switchover-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('switchover to db2 and back under pgbench: new timelines, the old primary streams again without rewind or restore, no committed row lost', async () => {
    const script = join(work, 'insert.sql');
    await writeFile(script, 'INSERT INTO bench_rows (client) VALUES (:client_id);\n');
    const load = new Load(script, superuserPassword);
    const db1Sysid = await sysid(m('db1'));
    load.start();
    try {
      // Writes go on before the switch.
      await eventually(async () => load.committed, (n) => n > 0, 60_000);

      const there = await run('switchover.yml', 'db1', ['-p', 'candidate=db2', '--yes']);
      expect(there.exitCode, failure(there)).toBe(0);
      const proof = there.events.filter((e) => e.type === 'step-result' && e.step === 'cutover/checkpoint-replayed');
      expect(proof.map((e) => `${e.host}=${e.status}`)).toEqual(['db2=ok']);
      expect(results(there.events)).toEqual(expect.arrayContaining(['cutover/shutdown@db1=changed', 'cutover/promote@db2=changed', 'rejoin-start@db1=changed', 'backup/backup@bk1=changed']));
      // No rescue ran, nothing was restored or rewound: db1 kept its data directory and rejoined.
      expect(results(there.events).filter((r) => r.includes('/rescue/') || r.includes('restore'))).toEqual([]);
      expect(await m('db2').psql('SELECT pg_is_in_recovery(), timeline_id FROM pg_control_checkpoint()')).toBe('f|2');
      expect(await m('db1').psql('SELECT pg_is_in_recovery()')).toBe('t');
      expect(await sysid(m('db1'))).toBe(db1Sysid);
      expect(await sh(m('db1'), `test -f ${m('db1').pgdata}/standby.signal && echo standby.signal`)).toBe('standby.signal');
      expect(await m('db2').psql("SELECT application_name, state FROM pg_stat_replication")).toBe('db1|streaming');
      expect(await m('db1').psql('SELECT received_tli FROM pg_stat_wal_receiver')).toBe('2');
      expect((await newestBackup()).archive.start.slice(0, 8)).toBe('00000002');

      // Writes reach db2 now.
      const onDb2 = Number(await m('db2').psql('SELECT count(*) FROM bench_rows'));
      await eventually(async () => Number(await m('db2').psql('SELECT count(*) FROM bench_rows')), (n) => n > onDb2, 60_000);

      const back = await run('switchover.yml', 'db2', ['-p', 'candidate=db1', '--yes']);
      expect(back.exitCode, failure(back)).toBe(0);
      expect(await m('db1').psql('SELECT pg_is_in_recovery(), timeline_id FROM pg_control_checkpoint()')).toBe('f|3');
      expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
      expect(await m('db1').psql("SELECT application_name, state FROM pg_stat_replication")).toBe('db2|streaming');
      expect((await newestBackup()).archive.start.slice(0, 8)).toBe('00000003');
      const onDb1 = Number(await m('db1').psql('SELECT count(*) FROM bench_rows'));
      await eventually(async () => Number(await m('db1').psql('SELECT count(*) FROM bench_rows')), (n) => n > onDb1, 60_000);
    } finally {
      await load.stop();
    }

    const rows = Number(await m('db1').psql('SELECT count(*) FROM bench_rows'));
    console.log(`switchover-machines: ${load.committed} transactions committed by pgbench in ${load.rounds} rounds, ${load.aborted} connections cut, ${rows} rows on db1`);
    expect(load.committed).toBeGreaterThan(0);
    // Every transaction pgbench saw committed is there; at most one more per cut connection (its commit in flight).
    expect(rows).toBeGreaterThanOrEqual(load.committed);
    expect(rows).toBeLessThanOrEqual(load.committed + load.aborted);
    // And the standby has them all too.
    expect(await eventually(() => m('db2').psql('SELECT count(*) FROM bench_rows'), (v) => v === String(rows))).toBe(String(rows));
  }, 600_000);

  it('preflight refusal: the candidate max_connections lower than the primary\'s: exit 3 naming it, nothing changed', async () => {
    // Raise the primary's (a restart): db2 keeps 100 and pauses replay at the parameter change.
    await m('db1').psql('ALTER SYSTEM SET max_connections = 150');
    await sh(m('db1'), 'pg_ctlcluster 15 main restart');
    expect(await eventually(() => m('db2').psql('SELECT pg_get_wal_replay_pause_state()'), (v) => v === 'paused', 60_000)).toBe('paused');
    const pids = { db1: await m('db1').postmasterPid(), db2: await m('db2').postmasterPid() };

    const r = await run('switchover.yml', 'db1', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(3);
    const end = r.events.findLast((e) => e.type === 'run-end') as { error?: { code: string; message: string; step?: string } };
    expect(end.error?.code).toBe('GUARD');
    expect(end.error?.step).toBe('preflight/settings');
    expect(end.error?.message).toContain('max_connections = 100 on db2 (the primary has 150)');
    expect(changedSteps(r.events)).toEqual([]);
    expect({ db1: await m('db1').postmasterPid(), db2: await m('db2').postmasterPid() }).toEqual(pids);
    expect(await m('db1').psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
  }, 240_000);
});
