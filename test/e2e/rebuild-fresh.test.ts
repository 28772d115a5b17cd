/**
 * Rebuilding a freshly installed host (issue 11 item 8) with real PostgreSQL 15 and pgBackRest 2.45: the
 * lab's standby host db2 gets what a package leaves on a new machine (a cluster of its own made by
 * initdb, started read-write, no user data), and standby-from-backup.yml
 *
 * - without rebuild refuses (exit 3) naming `-p rebuild=true`, the cluster's system identifier and that
 *   it is not the upstream's cluster, and leaves it running, untouched;
 * - with `-p rebuild=true` stops it and replaces it by a standby that streams from db1;
 * - refuses, whatever the flags, a server of the inventory's cluster running read-write there (a
 *   promoted standby is a live primary);
 * - refuses, even with rebuild, a cluster holding user data (a table with rows), running or stopped,
 *   unless `-p replace_sysid=<its system identifier>` names exactly that cluster.
 *
 * Ports 26530-26532 (the lab's db1, db2, drill1).
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, eventually, labUp, results, waitGone, type TestLab } from './lab-helpers.js';

const BIN = '/usr/lib/postgresql/15/bin';
const BASE = 26530;

async function asPostgres(argv: string[]): Promise<string> {
  const r = await execa('runuser', ['-u', 'postgres', '--', ...argv], { reject: false, cwd: '/', env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout.trim();
}

describe('standby-from-backup over a freshly installed host (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  const pgdata = () => lab.pgdata('db2');
  const sysid = () => lab.psql('db2', 'SELECT system_identifier FROM pg_control_system()');
  const startDb2 = () =>
    asPostgres([`${BIN}/pg_ctl`, 'start', '-D', pgdata(), '-w', '-l', join(lab.dir, 'db2', 'log', 'fresh.log'), '-o', `-p ${lab.port('db2')} -k ${join(lab.dir, 'db2', 'run')}`]);

  /** What a package leaves: a cluster of its own in db2's PGDATA, running read-write; rows in a table if asked. */
  async function freshCluster(rows?: number): Promise<string> {
    const pid = await lab.postmasterPid('db2');
    if (pid) {
      await asPostgres([`${BIN}/pg_ctl`, 'stop', '-D', pgdata(), '-m', 'fast', '-w']);
      await waitGone(pid);
    }
    await execa('rm', ['-rf', '--', pgdata()]);
    await asPostgres([`${BIN}/initdb`, '-D', pgdata(), '--auth-local=peer', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    await startDb2();
    if (rows) await lab.psql('db2', `CREATE TABLE keepme AS SELECT g AS id FROM generate_series(1, ${rows}) g`);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    return sysid();
  }

  const error = (r: { events: Array<{ type: string; error?: { code: string; message: string; hint?: string } }> }) =>
    r.events.filter((e) => e.error).at(-1)!.error as { code: string; message: string; hint?: string };

  beforeAll(async () => {
    lab = await createLab(BASE, 'rebuild-fresh');
    await labUp(lab);
    const backup = await lab.run('nightly-backup.yml', ['--yes']);
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('without rebuild: exit 3 naming -p rebuild=true and the cluster found; it still runs, untouched', async () => {
    const fresh = await freshCluster();
    const pid = await lab.postmasterPid('db2');
    const primary = await lab.psql('db1', 'SELECT system_identifier FROM pg_control_system()');

    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(r.exitCode, results(r.events).join(' ')).toBe(3);
    const e = error(r);
    expect(e.code).toBe('GUARD');
    expect(e.message).toContain(`db2 is running read-write (not in recovery), system identifier ${fresh}: not the cluster of its upstream db1 (system identifier ${primary})`);
    expect(e.message).toContain('-p rebuild=true');
    expect(changedSteps(r.events)).toEqual([]);

    expect(await lab.postmasterPid('db2')).toBe(pid);
    expect(await sysid()).toBe(fresh);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('with rebuild=true: the fresh cluster is stopped and replaced, and db2 streams from db1', async () => {
    const fresh = await sysid();
    const primary = await lab.psql('db1', 'SELECT system_identifier FROM pg_control_system()');
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']);
    expect(r.exitCode, `${results(r.events).join(' ')}\n${r.stdout.slice(-1500)}`).toBe(0);
    expect(changedSteps(r.events)).toEqual(expect.arrayContaining(['build/stop@db2', 'build/pgbackrest/restore@db2', 'build/start@db2']));

    expect(await sysid()).toBe(primary);
    expect(primary).not.toBe(fresh);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db1', "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")).toBe('1');
    await lab.psql('db1', 'CREATE TABLE after_rebuild AS SELECT g FROM generate_series(1, 7) g', 'app');
    const replicated = await eventually(() => lab.tryPsql('db2', 'SELECT count(*) FROM after_rebuild', 'app'), (x) => x.stdout === '7');
    expect(replicated.stdout).toBe('7');
  });

  it('a cluster with user data is refused even with rebuild (running or stopped); replace_sysid naming it replaces it', async () => {
    const other = await freshCluster(25);
    const pid = await lab.postmasterPid('db2');
    for (const extra of [['-p', 'rebuild=true'], ['-p', 'rebuild=true', '-p', 'replace_sysid=1234']]) {
      const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes', ...extra]);
      expect(r.exitCode, results(r.events).join(' ')).toBe(3);
      const e = error(r);
      expect(e.code).toBe('GUARD');
      expect(e.message).toContain(`refusing to stop the server of ${pgdata()} on db2: it holds a cluster with system identifier ${other}`);
      expect(e.message).toContain('with user data: 1 table, index or sequence made after initdb (base/5/');
      expect(e.hint).toContain(`-p rebuild=true -p replace_sysid=${other}`);
      expect(changedSteps(r.events)).toEqual([]);
      expect(await lab.postmasterPid('db2')).toBe(pid);
    }
    expect(await lab.psql('db2', 'SELECT count(*) FROM keepme')).toBe('25');

    // Stopped, the same cluster is refused by the restore, which reads the same files.
    await asPostgres([`${BIN}/pg_ctl`, 'stop', '-D', pgdata(), '-m', 'fast', '-w']);
    await waitGone(pid!);
    const stopped = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '--yes']);
    expect(stopped.exitCode, results(stopped.events).join(' ')).toBe(3);
    expect(error(stopped).message).toContain(`refusing to restore into ${pgdata()} on db2: it holds a cluster with system identifier ${other}`);
    expect(results(stopped.events)).toContain('build/pgbackrest/restore@db2=failed');
    await startDb2();
    expect(await lab.psql('db2', 'SELECT count(*) FROM keepme')).toBe('25');
    expect(await sysid()).toBe(other);

    // Named by its system identifier, it is replaced.
    const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '-p', 'rebuild=true', '-p', `replace_sysid=${other}`, '--yes']);
    expect(r.exitCode, `${results(r.events).join(' ')}\n${r.stdout.slice(-1500)}`).toBe(0);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await sysid()).toBe(await lab.psql('db1', 'SELECT system_identifier FROM pg_control_system()'));
    expect(await lab.psql('db1', "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")).toBe('1');
  }, 300_000);
  // Last: the promotion archives a new timeline's history into the repository, which later restores would follow.
  it("the inventory's cluster running read-write on db2 (a promoted standby) is refused even with rebuild and replace_sysid", async () => {
    await asPostgres([`${BIN}/pg_ctl`, 'promote', '-D', pgdata(), '-w']);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('f');
    const id = await sysid();
    const pid = await lab.postmasterPid('db2');
    for (const extra of [['-p', 'rebuild=true'], ['-p', 'rebuild=true', '-p', `replace_sysid=${id}`]]) {
      const r = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes', ...extra]);
      expect(r.exitCode, results(r.events).join(' ')).toBe(3);
      expect(error(r).message).toContain(`system identifier ${id}, the inventory's cluster (its upstream db1 has the same): it is a live primary`);
      expect(changedSteps(r.events)).toEqual([]);
    }
    expect(await lab.postmasterPid('db2')).toBe(pid);
    expect(await lab.psql('db2', 'SELECT count(*) FROM after_rebuild', 'app')).toBe('7');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });
});
