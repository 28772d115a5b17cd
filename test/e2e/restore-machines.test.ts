/**
 * playbooks/restore.yml (issue 12 item 1) on separate machines, subnet 127.0.50.x (no other test file
 * uses it): db1 (primary) and db2 (standby) with Debian's PostgreSQL 15 made by pg_createcluster, bk1 the
 * pgBackRest repository, an inventory as a DBA writes it (no host vars), set up as the README says
 * (prepare, nightly-backup, standby-from-backup). One rig for the file, in this order:
 *
 * - refusals: db1 runs read-write and the in-place restore is not confirmed; db2 while db1 runs
 *   read-write: exit 3, nothing changed (same postmaster, same PGDATA, nothing kept aside, no backup).
 * - in place on db1 to a restore point made before a DROP TABLE: the table back with its rows, the old
 *   PGDATA kept aside (its pg_control: same system, the old timeline), a new timeline, a new full backup,
 *   db2 rebuilt and streaming from db1.
 * - db1's machine dies (its postmaster and sshd killed by pid): restoring db2 is refused until the DBA
 *   confirms db1 is down; then db2 comes back at the newest WAL (a row written after the first restore
 *   is there) and is the primary, with a new full backup, and the topology change is printed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreReport } from '../../src/report/restore.js';
import { runCli } from '../support/cli.js';
import { PG_VERSION, startMachines, type Machine, type Machines } from '../support/machines.js';
import { eventually, events, PLAYBOOKS, results, type JsonEvent } from './lab-helpers.js';

const SUBNET = '127.0.50';
const BINDIR = `/usr/lib/postgresql/${PG_VERSION}/bin`;

type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };
type Info = { backup: Array<{ label: string; type: string; archive: { start: string; stop: string } }>; archive: Array<{ max: string }> };

describe('restore.yml on separate machines: in place to a restore point, onto the standby after the primary died, refusals', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  let inventory: string;
  const started = Date.now();
  const env = { PGPLAY_REPLICATION_PASSWORD: `repl-${randomBytes(12).toString('hex')}` };
  const m = (name: 'db1' | 'db2' | 'bk1'): Machine => rig.machines[name]!;

  async function sh(x: Machine, script: string, user?: string): Promise<string> {
    const r = await x.exec(['sh', '-ec', script], { user });
    if (r.exitCode !== 0) throw new Error(`on ${x.name}: ${script}\nexited ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  }
  async function run(playbook: string, args: string[] = []): Promise<RunOutcome> {
    const r = await runCli(['run', join(PLAYBOOKS, playbook), '-i', inventory, '--output', 'json', '--state-dir', stateDir, ...args], { env });
    return { ...r, events: events(r.stdout) };
  }
  const failure = (r: RunOutcome) => `exit ${r.exitCode}\n${r.stdout.slice(-8000)}\n${r.stderr.slice(-3000)}`;
  const info = async (): Promise<Info> => (JSON.parse(await sh(m('bk1'), 'pgbackrest --stanza=main --output=json info', 'postgres')) as Info[])[0]!;
  const controlData = (x: Machine, pgdata: string) => sh(x, `${BINDIR}/pg_controldata ${pgdata}`, 'postgres');
  const field = (control: string, name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(control)?.[1]?.trim();
  /** PGDATA directories kept aside beside the machine's PGDATA. */
  const keptAside = async (x: Machine) => (await sh(x, `ls -d ${x.pgdata}.pgplay-* 2>/dev/null || true`)).split('\n').filter(Boolean);
  /** Waits until the primary's archiver pushed the WAL segment holding its current position. */
  async function archiveCurrent(x: Machine): Promise<void> {
    const wal = await x.psql('SELECT pg_walfile_name(pg_current_wal_lsn()) FROM pg_switch_wal()');
    await eventually(() => x.psql('SELECT coalesce(last_archived_wal, \'\') FROM pg_stat_archiver'), (v) => v >= wal, 60_000);
  }
  /** The restore report pgplay wrote for a run (<state dir>/restores/<run id>.json). */
  async function restoreReport(r: RunOutcome): Promise<RestoreReport> {
    const runId = (JSON.parse(r.stdout.split('\n')[0]!) as { runId: string }).runId;
    return JSON.parse(await readFile(join(stateDir, 'restores', `${runId}.json`), 'utf8')) as RestoreReport;
  }
  /** What must not change when a restore is refused. */
  async function untouched(): Promise<{ db1: string; db2: string }> {
    const state = async (x: Machine) =>
      [await x.postmasterPid(), await x.psql('SELECT pg_is_in_recovery()'), field(await sh(x, `${BINDIR}/pg_controldata ${x.pgdata}`, 'postgres'), 'Database system identifier'), (await keptAside(x)).length].join('|');
    return { db1: await state(m('db1')), db2: await state(m('db2')) };
  }

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.3`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-restore-machines-'));
    stateDir = join(work, 'state');
    inventory = join(work, 'inventory.yml');
    await writeFile(
      inventory,
      stringify({
        cluster: 'main',
        postgres: { version: PG_VERSION, layout: 'debian' },
        connection: { transport: 'ssh', user: 'root', port: 22, identityFile: rig.identityFile, knownHosts: rig.knownHosts, agent: false, become: 'postgres' },
        replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' }, slots: true },
        backup: { tool: 'pgbackrest', repoHost: 'bk1', retention: { full: 3 } },
        hosts: {
          db1: { address: m('db1').address, role: 'primary' },
          db2: { address: m('db2').address, role: 'standby', upstream: 'db1' },
          bk1: { address: m('bk1').address, role: 'repository' },
        },
      }),
    );
    // The repository host's globals export logs in as the superuser with its own ~/.pgpass.
    const password = randomBytes(12).toString('hex');
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${password}'`);
    await sh(m('bk1'), `umask 077; printf '%s\\n' '*:5432:*:postgres:${password}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    // The package's fresh cluster on the standby-to-be is stopped first, as the README says.
    await sh(m('db2'), `pg_ctlcluster ${PG_VERSION} main stop`);
    for (const [playbook, args] of [
      ['prepare.yml', ['--yes']],
      ['nightly-backup.yml', ['--yes']],
      ['standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']],
    ] as const) {
      const r = await run(playbook, [...args]);
      if (r.exitCode !== 0) throw new Error(`${playbook}: ${failure(r)}`);
    }
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    console.log(`restore-machines: rig and cluster ready in ${Math.round((Date.now() - started) / 1000)} s`);
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`restore-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('refuses (exit 3) an in-place restore of the read-write db1 that is not confirmed, and a restore of db2 while db1 runs read-write; nothing changes', async () => {
    const before = await untouched();
    const backups = (await info()).backup.length;

    const inPlace = await run('restore.yml', ['-p', 'host=db1', '-p', 'target=immediate', '--yes']);
    expect(inPlace.exitCode, failure(inPlace)).toBe(3);
    expect(inPlace.stdout + inPlace.stderr).toContain('-p in_place=confirmed');

    const beside = await run('restore.yml', ['-p', 'host=db2', '-p', 'in_place=confirmed', '--yes']);
    expect(beside.exitCode, failure(beside)).toBe(3);
    expect(beside.stdout + beside.stderr).toMatch(/db1,? runs read-write/);

    expect(await untouched()).toEqual(before);
    expect((await info()).backup.length).toBe(backups);
  }, 300_000);

  it('in place on db1 to a restore point before a DROP TABLE: the table is back, the old PGDATA kept aside, a new timeline, a new full backup, db2 streaming', async () => {
    const db1 = m('db1');
    await db1.psql('CREATE TABLE precious AS SELECT g AS id FROM generate_series(1, 1234) AS g');
    await db1.psql("SELECT pg_create_restore_point('before_drop')");
    await db1.psql('DROP TABLE precious');
    await archiveCurrent(db1);
    const sysid = field(await controlData(db1, db1.pgdata), 'Database system identifier');
    const oldTimeline = Number(await db1.psql('SELECT timeline_id FROM pg_control_checkpoint()'));
    const fullsBefore = (await info()).backup.filter((b) => b.type === 'full').length;

    const r = await run('restore.yml', ['-p', 'host=db1', '-p', 'target=name', '-p', 'target_value=before_drop', '-p', 'in_place=confirmed', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);

    expect(await db1.psql('SELECT count(*) FROM precious')).toBe('1234');
    expect(await db1.psql('SELECT pg_is_in_recovery()')).toBe('f');
    const timeline = Number(await db1.psql('SELECT timeline_id FROM pg_control_checkpoint()'));
    expect(timeline).toBeGreaterThan(oldTimeline);
    // The previous PGDATA, renamed within its parent: the same system at the old timeline, with the drop in it.
    const kept = await keptAside(db1);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.startsWith(`${db1.pgdata}.pgplay-`)).toBe(true);
    const keptControl = await controlData(db1, kept[0]!);
    expect(field(keptControl, 'Database system identifier')).toBe(sysid);
    expect(Number(field(keptControl, "Latest checkpoint's TimeLineID"))).toBe(oldTimeline);
    // A new full backup on the new timeline.
    const after = await info();
    expect(after.backup.filter((b) => b.type === 'full').length).toBe(fullsBefore + 1);
    expect(parseInt(after.backup.at(-1)!.archive.start.slice(0, 8), 16)).toBe(timeline);
    // The restore report: the evidence from the server log, the set, the RTO, the previous PGDATA.
    const report = await restoreReport(r);
    expect(report).toMatchObject({ status: 'passed', host: 'db1', previous_primary: 'db1', target: { type: 'name', value: 'before_drop' }, target_reached: true, timeline, kept_aside: kept[0], standbys: ['db2'] });
    expect(report.proof.join('\n')).toContain('recovery stopping at restore point "before_drop"');
    expect(report.rto.ms).toBeGreaterThan(0);
    expect(report.new_backup).toBe(after.backup.at(-1)!.label);
    // db2 was rebuilt from it and streams from db1 on the new timeline.
    expect(results(r.events)).toEqual(expect.arrayContaining(['rebuild-standbys[0]/streaming@db1=ok']));
    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await eventually(() => db1.psql('SELECT application_name, state FROM pg_stat_replication'), (v) => v === 'db2|streaming')).toBe('db2|streaming');
    expect(await eventually(() => m('db2').psql('SELECT received_tli FROM pg_stat_wal_receiver'), (v) => v === String(timeline))).toBe(String(timeline));
    expect(await eventually(() => m('db2').psql("SELECT count(*) FROM pg_class WHERE relname = 'precious'"), (v) => v === '1')).toBe('1');
  }, 600_000);

  it("onto db2 after db1's machine died: refused until db1 is confirmed down, then db2 is the primary at the newest WAL with a new full backup", async () => {
    const db1 = m('db1');
    const db2 = m('db2');
    await db1.psql("CREATE TABLE after_restore AS SELECT 'written on the restored db1'::text AS note");
    await archiveCurrent(db1);
    const timeline = Number(await db1.psql('SELECT timeline_id FROM pg_control_checkpoint()'));
    await db1.crash();

    const db2Pid = await db2.postmasterPid();
    const refused = await run('restore.yml', ['-p', 'host=db2', '--yes']);
    expect(refused.exitCode, failure(refused)).toBe(3);
    expect(refused.stdout + refused.stderr).toContain('-p down=db1');
    expect(await db2.postmasterPid()).toBe(db2Pid);
    expect(await db2.psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await keptAside(db2)).toEqual([]);

    const r = await run('restore.yml', ['-p', 'host=db2', '-p', 'down=db1', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(await db2.psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await db2.psql('SELECT note FROM after_restore')).toBe('written on the restored db1');
    expect(await db2.psql('SELECT count(*) FROM precious')).toBe('1234');
    const newTimeline = Number(await db2.psql('SELECT timeline_id FROM pg_control_checkpoint()'));
    expect(newTimeline).toBeGreaterThan(timeline);
    expect(await keptAside(db2)).toHaveLength(1);
    const after = await info();
    expect(parseInt(after.backup.at(-1)!.archive.start.slice(0, 8), 16)).toBe(newTimeline);
    expect(after.backup.at(-1)!.type).toBe('full');
    // Nothing ran on the dead machine, and the topology change is printed.
    expect(r.events.filter((e) => e.type === 'step-result' && e.host === 'db1')).toEqual([]);
    const topology = r.stdout.split('\n').filter((l) => l.includes('"topology-changed"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(topology).toEqual([expect.objectContaining({ type: 'topology-changed', primary: 'db2', previousPrimary: 'db1', timeline: newTimeline })]);
    expect(await restoreReport(r)).toMatchObject({ status: 'passed', host: 'db2', previous_primary: 'db1', target: { type: 'latest' }, target_reached: true, standbys: [] });
  }, 600_000);
});
