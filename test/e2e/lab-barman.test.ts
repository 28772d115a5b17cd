/**
 * `pgplay lab up --backup-tool barman` (issue 13 items 5 and 6) on the lab (ports 21600-21602): Barman
 * 3.4 from Debian runs beside the lab's servers as the postgres OS user with the lab's own barman.conf
 * (backup.barman.local: no SSH; the machine's /etc/barman.conf, /etc/barman.d and /var/lib/barman
 * untouched), and the shipped procedures run against it unchanged in their params:
 *
 *   refusal for PostgreSQL 16 | lab up | nightly-backup (streaming backup B1) | restore onto another cluster
 *   refused by same-cluster-set (exit 3) | restore with a wait no step can take refused before the stop (exit 2)
 *   | standby db2 from B1 (twice)
 *   | restore point before-drop | DROP TABLE | pitr-drill (PASSED, table back) | promote db2 (Barman follows) |
 *   nightly-backup of db2 | lab down (receive-wal stopped)
 */
import { execa } from 'execa';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrillReport } from '../../src/report/drill.js';
import { changedSteps, createLab, events, eventually, pidAlive, PLAYBOOKS, results, waitGone, type TestLab } from './lab-helpers.js';

const BASE_PORT = 21600;

interface ListedBackup {
  backup_id: string;
  status: string;
}

/** What the machine's own Barman holds: the lab must leave it as it found it. */
async function machineBarman(): Promise<string[]> {
  const list = async (d: string) => (await readdir(d).catch(() => [] as string[])).map((f) => `${d}/${f}`);
  return [...(await list('/etc/barman.d')), ...(await list('/var/lib/barman'))].sort();
}

describe('the lab with backup.tool barman: Barman 3.4 beside PostgreSQL 15, its own configuration, no SSH', () => {
  let lab: TestLab;
  let down = false;
  let machineBefore: string[];
  const started = Date.now();
  const config = () => join(lab.dir, 'bk1', 'barman', 'barman.conf');
  const barman = async (args: string[]) => {
    const r = await execa('runuser', ['-u', 'postgres', '--', 'barman', '-c', config(), ...args], { reject: false, cwd: '/' });
    if (r.exitCode !== 0) throw new Error(`barman ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
    return r.stdout;
  };
  const listBackups = async () => (JSON.parse(await barman(['-f', 'json', 'list-backups', 'lab'])) as Record<string, ListedBackup[]>).lab ?? [];
  /** receive-wal's pid from the lock file Barman keeps in the lab's barman_home, when that process runs. */
  const receiveWal = async () => {
    const pid = Number((await readFile(join(lab.dir, 'bk1', 'barman', 'home', '.lab-receive-wal.lock'), 'utf8').catch(() => '')).trim());
    return pid > 0 && pidAlive(pid) ? pid : undefined;
  };
  const failure = (r: { exitCode: number; stdout: string; stderr: string }) => `exit ${r.exitCode}\n${r.stdout.slice(-6000)}\n${r.stderr.slice(-2000)}`;

  beforeAll(async () => {
    machineBefore = await machineBarman();
    lab = await createLab(BASE_PORT, 'barman');
  }, 60_000);

  afterAll(async () => {
    if (lab && !down) await lab.down();
    console.log(`lab-barman: the file took ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('--backup-tool barman with PostgreSQL 16 is refused (exit 2): Barman 3.4 cannot serve it; nothing is created', async () => {
    // The version check comes before any change; 15's binaries stand in for 16's, which this machine lacks.
    const dir = join(dirname(lab.dir), 'lab16');
    const r = await lab.pgplay(['lab', 'up', '--dir', dir, '--pg-version', '16', '--bindir', '/usr/lib/postgresql/15/bin', '--base-port', String(BASE_PORT), '--backup-tool', 'barman']);
    expect(r.exitCode, failure(r)).toBe(2);
    expect(r.stderr).toContain('--backup-tool barman: PostgreSQL 16 needs Barman 3.8 or later; the repository host has Barman 3.4');
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('lab up builds the lab with its own Barman: the inventory says so, WAL is archived through barman put-wal, receive-wal streams', async () => {
    const up = await lab.pgplay(['lab', 'up', '--dir', lab.dir, '--base-port', String(BASE_PORT), '--backup-tool', 'barman']);
    expect(up.exitCode, failure(up)).toBe(0);
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    expect(inventory.backup).toMatchObject({ tool: 'barman', repoHost: 'bk1', barman: { local: true, config: config(), server: 'lab' } });
    expect(await readFile(config(), 'utf8')).toContain('barman_user = postgres');
    expect((await stat(join(lab.dir, 'bk1', 'barman', 'pgpass'))).mode & 0o777).toBe(0o600);
    expect(await lab.psql('db1', "SELECT current_setting('archive_command') LIKE '%barman -c ' || $$" + config() + "$$ || ' put-wal lab%'")).toBe('t');
    expect(await lab.psql('db1', "SELECT slot_type || ' ' || active FROM pg_replication_slots WHERE slot_name = 'barman_lab'")).toBe('physical true');
    expect(await receiveWal()).toBeDefined();
    expect(await machineBarman()).toEqual(machineBefore);
  }, 180_000);

  it('nightly-backup: a streaming backup listed by barman list-backups, WAL archived with no failure', async () => {
    const r = await lab.run('nightly-backup.yml', ['--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    const backups = await listBackups();
    expect(backups.map((b) => b.status)).toEqual(['DONE']);
    expect(await readFile(join(lab.dir, 'bk1', 'barman', 'barman.d', 'lab.conf'), 'utf8')).toContain('backup_method = postgres');
    expect(await barman(['show-backup', 'lab', backups[0]!.backup_id])).toMatch(/Status\s+: DONE/);
    expect(await lab.psql('db1', 'SELECT archived_count > 0 AND failed_count = 0 FROM pg_stat_archiver')).toBe('t');
    expect(results(r.events)).toEqual(expect.arrayContaining(['barman/backup@bk1=changed', 'barman/check-after@bk1=ok']));
  }, 180_000);

  it('restore.yml onto a host holding another cluster than the Barman backup is refused by same-cluster-set (exit 3); that host and db1 unchanged', async () => {
    // The inventory a DBA might point at the wrong machine: its primary db9 holds a cluster initdb made
    // after the backup (not running, so no other guard stands in the way).
    const pgdata = join(lab.dir, 'db9');
    const initdb = await execa('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/initdb', '-D', pgdata, '-A', 'trust'], { reject: false, cwd: '/' });
    expect(initdb.exitCode, initdb.stderr).toBe(0);
    const controldata = async () => (await execa('/usr/lib/postgresql/15/bin/pg_controldata', [pgdata], { env: { LC_ALL: 'C' } })).stdout;
    const db9System = /Database system identifier:\s+(\d+)/.exec(await controldata())![1];
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    const db1 = inventory.hosts.db1;
    inventory.hosts = { db9: { ...db1, pgdata, postgres: { ...(db1.postgres ?? {}), port: 21800 } }, bk1: inventory.hosts.bk1 };
    const file = join(lab.dir, 'inventory-db9.yml');
    await writeFile(file, stringify(inventory));
    const db1System = await lab.psql('db1', 'SELECT system_identifier FROM pg_control_system()');
    const files = (await readdir(pgdata)).sort();

    const r = await lab.pgplay(['run', join(PLAYBOOKS, 'restore.yml'), '-i', file, '-p', 'host=db9', '--yes', '--output', 'json']);
    expect(r.exitCode, failure(r)).toBe(3);
    const evs = events(r.stdout);
    expect(results(evs)).toContain('same-cluster-set@db9=failed');
    expect(changedSteps(evs)).toEqual([]);
    expect(evs.find((e) => e.type === 'run-end')?.error?.message).toContain(`holds system ${db9System}`);
    expect(db9System).not.toBe(db1System);
    expect(/Database system identifier:\s+(\d+)/.exec(await controldata())![1]).toBe(db9System);
    expect((await readdir(pgdata)).sort()).toEqual(files);
    expect((await readdir(dirname(pgdata))).filter((f) => f.startsWith('db9.pgplay-'))).toEqual([]);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    await rm(pgdata, { recursive: true, force: true });
  }, 120_000);

  it('restore.yml whose later step cannot take its input (-p wait=fifteen, read first by the start after the restore) is refused (exit 2) before anything changes: db1 runs read-write, same pid, rows and system', async () => {
    const before = async () => ({
      pid: await lab.postmasterPid('db1'),
      state: await lab.psql('db1', 'SELECT pg_is_in_recovery()'),
      rows: await lab.psql('db1', 'SELECT count(*) FROM accounts', 'app'),
      system: await lab.psql('db1', 'SELECT system_identifier FROM pg_control_system()'),
    });
    const was = await before();
    expect(was.state).toBe('f');
    const r = await lab.run('restore.yml', ['-p', 'host=db1', '-p', 'in_place=confirmed', '-p', 'wait=fifteen', '--yes']);
    expect(r.exitCode, failure(r)).toBe(2);
    expect(changedSteps(r.events)).toEqual([]);
    expect(r.stdout + r.stderr).toContain('recover/start-pg-ctl on db1');
    expect(r.stdout + r.stderr).toContain('wait_timeout');
    expect(await before()).toEqual(was);
    expect((await readdir(dirname(lab.pgdata('db1')))).filter((f) => f.startsWith(`${basename(lab.pgdata('db1'))}.pgplay-`))).toEqual([]);
  }, 180_000);

  it('standby-from-backup db2: recovered by Barman, in recovery, streaming, rows arriving; a second run changes nothing', async () => {
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toContain('build/restore-barman@db2=changed');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db1', "SELECT state FROM pg_stat_replication WHERE application_name = 'db2'")).toBe('streaming');
    expect(await lab.psql('db2', 'SELECT count(*) FROM accounts', 'app')).toBe('1000');
    await lab.psql('db1', 'INSERT INTO accounts SELECT g, $$late-$$ || g, 0, now() FROM generate_series(1001, 1025) g', 'app');
    expect(await eventually(() => lab.psql('db2', 'SELECT count(*) FROM accounts', 'app'), (v) => v === '1025')).toBe('1025');
    expect(await lab.psql('db2', "SELECT current_setting('restore_command')")).toBe(`barman -c ${config()} get-wal lab %f > "%p"`);

    const again = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(again.exitCode, failure(again)).toBe(0);
    expect(changedSteps(again.events)).toEqual([]);
  }, 180_000);

  it('pitr-drill to a restore point: PASSED, the dropped table back on the drill copy, still dropped on db1', async () => {
    await lab.psql('db1', "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'the order'), (2, 'another')", 'app');
    await lab.psql('db1', "SELECT pg_create_restore_point('before-drop')");
    await lab.psql('db1', 'DROP TABLE orders', 'app');
    const reportFile = join(lab.dir, 'drill.json');
    const checks = JSON.stringify([{ sql: 'SELECT count(*) FROM orders', expect: '2' }]);
    const r = await lab.run('pitr-drill.yml', ['-p', 'target=name', '-p', 'target_value=before-drop', '-p', 'checks_database=app', '-p', `checks=${checks}`, '--report', reportFile, '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['restore-barman@drill1=changed', 'verdict@drill1=ok']));
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as DrillReport;
    expect(report).toMatchObject({ status: 'passed', target_reached: true, teardown: 'removed' });
    expect(report.checks.map((c) => `${c.got}:${c.ok}`)).toEqual(['2:true']);
    expect(report.proof.some((l) => l.includes('recovery stopping at restore point "before-drop"'))).toBe(true);
    expect(await lab.psql('db1', "SELECT pg_is_in_recovery(), to_regclass('public.orders') IS NULL", 'app')).toBe('f|t');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    await expect(stat(lab.pgdata('drill1'))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 180_000);

  it('promote db2: Barman follows the new primary (its config, slot and receive-wal; barman check OK), and the next nightly-backup backs up db2', async () => {
    const r = await lab.run('promote.yml', ['-p', 'candidate=db2', '--yes']);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(results(r.events)).toEqual(expect.arrayContaining(['barman-follows/receive-wal@bk1=changed', 'barman-follows/check@bk1=ok']));
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.postmasterPid('db1')).toBeUndefined();
    expect(await readFile(join(lab.dir, 'bk1', 'barman', 'barman.d', 'lab.conf'), 'utf8')).toContain(`port=${BASE_PORT + 1}`);
    expect(await lab.psql('db2', "SELECT active FROM pg_replication_slots WHERE slot_name = 'barman_lab'")).toBe('t');
    expect(await barman(['check', 'lab', '--nagios'])).toMatch(/^BARMAN OK/);

    const nightly = await lab.run('nightly-backup.yml', ['--yes']);
    expect(nightly.exitCode, failure(nightly)).toBe(0);
    const backups = await listBackups();
    expect(backups.map((b) => b.status)).toEqual(['DONE', 'DONE']);
    expect(await barman(['show-backup', 'lab', backups[0]!.backup_id])).toMatch(/Timeline\s+: 2/);
  }, 240_000);

  it('lab down stops Barman\'s receive-wal and pg_receivewal by pid, and removes the lab; the machine\'s Barman is as it was', async () => {
    const pid = await receiveWal();
    expect(pid).toBeDefined();
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
    expect(children.length).toBe(1);
    expect(await readFile(`/proc/${children[0]}/cmdline`, 'utf8')).toContain('pg_receivewal');
    const r = await lab.pgplay(['lab', 'down', '--dir', lab.dir]);
    expect(r.exitCode, failure(r)).toBe(0);
    expect(r.stdout).toContain('barman receive-wal');
    for (const p of [pid!, ...children]) expect(await waitGone(p)).toBe(true);
    await expect(stat(lab.dir)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await machineBarman()).toEqual(machineBefore);
    await lab.down();
    down = true;
  }, 120_000);
});
