/**
 * Failover on separate machines (issue 12 items 2 and 3): three machines of the rig
 * (test/support/machines.ts, subnet 127.0.51.x: no other file uses it), db1 and db2 with Debian's
 * PostgreSQL 15 `main`, bk1 the pgBackRest repository; the README's inventory over SSH, no host vars.
 *
 * One rig for the file, in order:
 * 1. promote db2 while db1 answers: db1 is fenced, and fencing includes the repository: its pgBackRest is
 *    stopped (the stop file, archive-push refused with pgBackRest's error 62) and its effective
 *    archive_command is empty, so it can never push WAL of the old timeline into the repository;
 * 2. db1 comes back as a standby of db2 (standby-from-backup; the restore replaces its fenced settings);
 * 3. db2's machine dies (its PostgreSQL and sshd killed by pid): promote db1 without confirmation is
 *    refused (exit 3) naming -p old_primary=down, and changes nothing (db1 still in recovery);
 * 4. with -p old_primary=down db1 is promoted and accepts writes, archives again (pgbackrest start on the
 *    new primary), a new full backup on its timeline, and the run report says fencing was impossible and
 *    confirmed by the operator.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TopologyChanged } from '../../src/model/topology.js';
import { runCli } from '../support/cli.js';
import { PG_VERSION, startMachines, type Machine, type Machines } from '../support/machines.js';
import { readmeInventory } from './fixtures/rig-procedures/readme-inventory.js';
import { changedSteps, eventually, events, results, type JsonEvent } from './lab-helpers.js';

const PLAYBOOKS = resolve('playbooks');
const SUBNET = '127.0.51';
const STANZA = 'main';
const BINDIR = `/usr/lib/postgresql/${PG_VERSION}/bin`;

type Name = 'db1' | 'db2' | 'bk1';
type RunOutcome = { exitCode: number; stdout: string; stderr: string; events: JsonEvent[] };

describe('failover on separate machines: fencing includes the repository; a dead primary needs the operator (Debian layout)', () => {
  let rig: Machines;
  let work: string;
  let stateDir: string;
  const started = Date.now();
  const env = { PGPLAY_REPLICATION_PASSWORD: `repl-${randomBytes(12).toString('hex')}` };
  const m = (name: Name): Machine => rig.machines[name]!;
  const failure = (r: RunOutcome) => `exit ${r.exitCode}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-3000)}`;

  async function sh(x: Machine, script: string, user?: string): Promise<{ code: number; out: string; err: string }> {
    const r = await x.exec(['sh', '-c', script], { user });
    return { code: r.exitCode, out: r.stdout.trim(), err: r.stderr.trim() };
  }

  /** The README's inventory with the rig's addresses and keys; `primary` is the primary, the other db its standby. */
  async function inventory(primary: 'db1' | 'db2'): Promise<string> {
    const inv = await readmeInventory();
    inv.connection = { ...inv.connection, identityFile: rig.identityFile, knownHosts: rig.knownHosts, agent: false };
    const standby = primary === 'db1' ? 'db2' : 'db1';
    inv.hosts = {
      [primary]: { address: m(primary).address, role: 'primary' },
      [standby]: { address: m(standby).address, role: 'standby', upstream: primary },
      bk1: { address: m('bk1').address, role: 'repository' },
    };
    const file = join(work, `inventory-${primary}.yml`);
    await writeFile(file, stringify(inv));
    return file;
  }

  async function run(playbook: string, inv: string, args: string[] = []): Promise<RunOutcome> {
    const r = await runCli(['run', join(PLAYBOOKS, playbook), '-i', inv, '--output', 'json', '--state-dir', stateDir, ...args], { env });
    return { ...r, events: events(r.stdout) };
  }
  const must = async (playbook: string, inv: string, args: string[]) => {
    const r = await run(playbook, inv, args);
    expect(r.exitCode, `${playbook}: ${failure(r)}`).toBe(0);
    return r;
  };
  const inRecovery = async (x: Machine) => ((await x.postmasterPid()) === undefined ? 'not running' : await x.psql('SELECT pg_is_in_recovery()'));
  const pgbackrestInfo = async () => {
    const r = await sh(m('bk1'), `pgbackrest --stanza=${STANZA} --output=json info`, 'postgres');
    return (JSON.parse(r.out) as Array<{ backup: Array<{ type: string; archive: { start: string } }> }>)[0]!;
  };

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.4`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-failover-machines-'));
    stateDir = join(work, 'state');
    // The repository host exports the globals as the superuser, with its password from its own ~/.pgpass.
    const superuserPassword = randomBytes(12).toString('hex');
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    await sh(m('bk1'), `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`);
    // The package's fresh cluster on the standby-to-be is stopped first, as the README says.
    await sh(m('db2'), `pg_ctlcluster ${PG_VERSION} main stop`);
    const inv = await inventory('db1');
    await must('prepare.yml', inv, ['--yes']);
    await must('nightly-backup.yml', inv, ['--yes']);
    await must('standby-from-backup.yml', inv, ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']);
    await m('db1').psql("CREATE TABLE failover_rows (id int PRIMARY KEY, note text); INSERT INTO failover_rows VALUES (1, 'written on db1')");
    expect(await eventually(() => m('db2').psql('SELECT count(*) FROM failover_rows').catch((e: Error) => e.message), (v) => v === '1')).toBe('1');
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`failover-machines: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('promote db2 with db1 reachable: db1 fenced, its pgBackRest stopped (archive-push refused) and its archive_command empty', async () => {
    const reportFile = join(work, 'promote-reachable.json');
    const r = await must('promote.yml', await inventory('db1'), ['-p', 'candidate=db2', '--yes', '--report', reportFile]);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['fence@db1=changed', 'fence-repository@db1=changed', 'fence-archive-command@db1=changed', 'fence-archive-command-off@db1=ok', 'promote@db2=changed']),
    );
    expect(await inRecovery(m('db2'))).toBe('f');
    expect(await inRecovery(m('db1'))).toBe('not running');

    // pgBackRest on db1 refuses to archive: the stop file is there, and archive-push of a real segment fails with 62.
    expect((await sh(m('db1'), `test -f /tmp/pgbackrest/${STANZA}.stop && echo present`)).out).toBe('present');
    const segment = (await sh(m('db1'), `ls /var/lib/postgresql/${PG_VERSION}/main/pg_wal | grep -E '^[0-9A-F]{24}$' | tail -n 1`, 'postgres')).out;
    expect(segment).toMatch(/^[0-9A-F]{24}$/);
    const push = await sh(m('db1'), `pgbackrest --stanza=${STANZA} archive-push /var/lib/postgresql/${PG_VERSION}/main/pg_wal/${segment}`, 'postgres');
    expect(push.code, push.err).toBe(62);
    expect(`${push.out}\n${push.err}`).toContain(`stop file exists for stanza ${STANZA}`);
    // Its archive_command, as the server would read it at its next start, is empty (postgresql.auto.conf is read last).
    const archiveCommand = await sh(m('db1'), `${BINDIR}/postgres -C archive_command -D /etc/postgresql/${PG_VERSION}/main`, 'postgres');
    expect(archiveCommand).toMatchObject({ code: 0, out: '' });
    expect((await sh(m('db1'), `cat /var/lib/postgresql/${PG_VERSION}/main/postgresql.auto.conf`)).out).toContain("archive_command = ''");
    // The new primary is not touched by the fence: it archives, and the new full backup is on its timeline.
    expect((await sh(m('db2'), `test -e /tmp/pgbackrest/${STANZA}.stop || echo absent`)).out).toBe('absent');
    expect((await pgbackrestInfo()).backup.at(-1)!.archive.start.slice(0, 8)).toBe('00000002');
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as { topology?: TopologyChanged };
    expect(report.topology).toMatchObject({ primary: 'db2', previousPrimary: 'db1', fencing: { state: 'fenced' } });
  }, 600_000);

  it('db1 comes back as a standby of db2 (the restore replaces its fenced settings)', async () => {
    // As the README says after a promotion: the inventory names db2 the primary, prepare.yml lets db1 stream from it.
    const inv = await inventory('db2');
    await must('prepare.yml', inv, ['--yes']);
    await must('standby-from-backup.yml', inv, ['-p', 'host=db1', '-p', 'rebuild=true', '--yes']);
    expect(await inRecovery(m('db1'))).toBe('t');
    await m('db2').psql("INSERT INTO failover_rows VALUES (2, 'written on db2')");
    expect(await eventually(() => m('db1').psql('SELECT count(*) FROM failover_rows').catch((e: Error) => e.message), (v) => v === '2')).toBe('2');
  }, 600_000);

  it("db2's machine dies: promoting db1 without -p old_primary=down is refused (exit 3) and changes nothing", async () => {
    await m('db2').crash();
    const r = await run('promote.yml', await inventory('db2'), ['-p', 'candidate=db1', '--yes']);
    expect(r.exitCode, failure(r)).toBe(3);
    const end = r.events.findLast((e) => e.type === 'run-end') as { error?: { code: string; message: string } } | undefined;
    expect(end?.error?.code).toBe('GUARD');
    expect(end?.error?.message).toContain('db2 (the primary) cannot be reached');
    expect(end?.error?.message).toContain('connection refused');
    expect(end?.error?.message).toContain('-p old_primary=down');
    expect(end?.error?.message).toContain('Nothing was changed');
    expect(changedSteps(r.events)).toEqual([]);
    expect(await inRecovery(m('db1'))).toBe('t');
  }, 600_000);

  it('with -p old_primary=down db1 is promoted, accepts writes and archives; the report says fencing was impossible and confirmed', async () => {
    const reportFile = join(work, 'promote-dead.json');
    const r = await must('promote.yml', await inventory('db2'), ['-p', 'candidate=db1', '-p', 'old_primary=down', '--yes', '--report', reportFile]);
    expect(results(r.events)).toEqual(
      expect.arrayContaining(['fence@db2=skipped', 'fence-confirmed@db1=ok', 'promote@db1=changed', 'new-primary-archives@db1=changed', 'backup@bk1=changed']),
    );
    const fence = r.events.find((e) => e.type === 'step-result' && e.step === 'fence' && e.host === 'db2') as { msg?: string } | undefined;
    expect(fence?.msg).toContain('host is unreachable (tolerated by the step)');
    expect(await m('db1').psql("INSERT INTO failover_rows VALUES (3, 'written on db1 after the failover') RETURNING pg_is_in_recovery()")).toBe('f');
    expect(await m('db1').psql('SELECT count(*) FROM failover_rows')).toBe('3');
    // pgBackRest on db1 was started again (an earlier promotion had fenced it): its WAL reaches the repository.
    expect((await sh(m('db1'), `test -e /tmp/pgbackrest/${STANZA}.stop || echo absent`)).out).toBe('absent');
    expect(await m('db1').psql('SELECT archived_count > 0, failed_count = 0 OR last_archived_time > last_failed_time FROM pg_stat_archiver')).toBe('t|t');
    expect((await pgbackrestInfo()).backup.at(-1)!.archive.start.slice(0, 8)).toBe('00000003');
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as { topology?: TopologyChanged };
    expect(report.topology).toMatchObject({ primary: 'db1', previousPrimary: 'db2', fencing: { state: 'impossible', confirmedByOperator: true } });
    expect((report.topology!.fencing as { reason: string }).reason).toContain('connection refused');
  }, 600_000);
});
