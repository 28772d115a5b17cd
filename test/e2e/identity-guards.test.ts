/**
 * Identity before destruction (issue 10, findings 3 and 4): a step that stops, restores into, copies
 * into or removes a data directory first reads what is there (pg_control's system identifier, a live
 * postmaster, which inventory host's directory it is) and refuses (exit 3) to destroy the primary's
 * directory or another cluster. Every case counts the rows it must not lose, before and after.
 *
 * Ports 26440-26449: db1, db2, drill1 of the lab on 26440-26442, the unrelated cluster on 26443, the
 * extra standby host db3 on 26444 (never started: every run against it is refused).
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliLimits, finished } from '../support/cli.js';
import { changedSteps, createLab, events, labUp, PLAYBOOKS, results, waitGone, type TestLab } from './lab-helpers.js';

const BIN = '/usr/lib/postgresql/15/bin';
const BASE = 26440;
const OTHER_PORT = BASE + 3;
const DB3_PORT = BASE + 4;

async function asPostgres(argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('runuser', ['-u', 'postgres', '--', ...argv], { reject: false, cwd: '/', env: { LC_ALL: 'C' } });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

async function mustAsPostgres(argv: string[]): Promise<string> {
  const r = await asPostgres(argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

/** A directory owned by the postgres OS user (mode 0700 for a PGDATA, 0755 for the rest). */
async function postgresDir(path: string, mode = '0755'): Promise<void> {
  await execa('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', mode, path]);
}

async function livePid(pgdata: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(join(pgdata, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    if (!(pid > 0)) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

describe('identity before destruction (PostgreSQL 15, pgBackRest 2.45)', () => {
  let lab: TestLab;
  let root: string;
  /** A symbolic link to db1's PGDATA: another path string for the primary's own directory. */
  let alias: string;
  /** An unrelated cluster (its own initdb, so its own system identifier), stopped. */
  let other: { pgdata: string; run: string };
  let baseInventory: Record<string, any>;

  const accounts = () => lab.psql('db1', 'SELECT count(*) FROM accounts', 'app');

  /** Writes an inventory derived from the lab's and returns its path. */
  async function inventory(name: string, change: (inv: Record<string, any>) => void): Promise<string> {
    const inv = structuredClone(baseInventory);
    change(inv);
    const file = join(root, `inventory-${name}.yml`);
    await writeFile(file, stringify(inv));
    return file;
  }

  /** A standby host db3 (upstream given) with its own pgBackRest and .pgpass files, at pgdata. */
  function db3(upstream: string, pgdata: string, port: number, socketDir: string): Record<string, unknown> {
    const dir = join(lab.dir, 'db3');
    return {
      address: '127.0.0.1',
      role: 'standby',
      upstream,
      pgdata,
      postgres: { port, socketDir, settings: baseInventory.hosts.db2.postgres.settings },
      vars: {
        lab_dir: dir,
        pgbackrest_config: join(dir, 'pgbackrest.conf'),
        pgbackrest_log_path: join(dir, 'log'),
        pgbackrest_lock_path: join(dir, 'lock'),
        pgpass_file: join(dir, 'pgpass'),
      },
    };
  }

  beforeAll(async () => {
    lab = await createLab(BASE, 'identity');
    root = join(lab.dir, '..');
    await labUp(lab);
    const backup = await lab.run('nightly-backup.yml');
    if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
    const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    if (standby.exitCode !== 0) throw new Error(`standby-from-backup failed: ${standby.stdout.slice(-2000)}`);
    baseInventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));

    alias = join(root, 'db1-data-alias');
    await symlink(lab.pgdata('db1'), alias);
    for (const d of ['', 'log', 'lock', 'run']) await postgresDir(join(lab.dir, 'db3', d));

    other = { pgdata: join(root, 'other', 'data'), run: join(root, 'other', 'run') };
    await postgresDir(join(root, 'other'));
    await postgresDir(other.run);
    await mustAsPostgres([`${BIN}/initdb`, '-D', other.pgdata, '--auth-local=peer', '-E', 'UTF8', '--locale=C.UTF-8']);
    await mustAsPostgres([`${BIN}/pg_ctl`, 'start', '-D', other.pgdata, '-w', '-l', join(root, 'other', 'server.log'), '-o', `-p ${OTHER_PORT} -k ${other.run}`]);
    await mustAsPostgres([`${BIN}/psql`, '-X', '-q', '-h', other.run, '-p', String(OTHER_PORT), '-d', 'postgres', '-c', 'CREATE TABLE keepme AS SELECT g AS id FROM generate_series(1, 25) g']);
    await mustAsPostgres([`${BIN}/pg_ctl`, 'stop', '-D', other.pgdata, '-m', 'fast', '-w']);
  });

  afterAll(async () => {
    // The unrelated cluster is stopped by the test that starts it; this is for a test that failed half-way.
    if (other && (await livePid(other.pgdata))) await asPostgres([`${BIN}/pg_ctl`, 'stop', '-D', other.pgdata, '-m', 'immediate', '-w']);
    await lab?.down();
  });

  /** Starts the unrelated cluster, counts its rows, stops it again. */
  async function otherRows(): Promise<string> {
    await mustAsPostgres([`${BIN}/pg_ctl`, 'start', '-D', other.pgdata, '-w', '-l', join(root, 'other', 'server.log'), '-o', `-p ${OTHER_PORT} -k ${other.run}`]);
    const pid = (await livePid(other.pgdata))!;
    try {
      const r = await asPostgres([`${BIN}/psql`, '-X', '-A', '-t', '-h', other.run, '-p', String(OTHER_PORT), '-d', 'postgres', '-c', 'SELECT count(*) FROM keepme']);
      return r.exitCode === 0 ? r.stdout : `error: ${r.stderr}`;
    } finally {
      await mustAsPostgres([`${BIN}/pg_ctl`, 'stop', '-D', other.pgdata, '-m', 'fast', '-w']);
      await waitGone(pid);
    }
  }

  // ---- Finding 4: standby-from-backup over a stopped cluster that is not a copy of this one ------------

  it('standby-from-backup refuses (exit 3) to restore over an unrelated cluster; its table is still there', async () => {
    expect(await otherRows()).toBe('25');
    const otherSysid = (await mustAsPostgres([`${BIN}/pg_controldata`, '-D', other.pgdata])).match(/Database system identifier:\s+(\d+)/)![1];
    const file = await inventory('unrelated', (inv) => {
      inv.hosts.db3 = db3('db1', other.pgdata, OTHER_PORT, other.run);
    });

    const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'standby-from-backup.yml'), '-i', file, '-p', 'host=db3', '--output', 'json']);
    expect(plan.exitCode, results(events(plan.stdout)).join(' ')).toBe(3);
    const r = await lab.run('standby-from-backup.yml', ['-i', file, '-p', 'host=db3', '--yes']);
    expect(r.exitCode).toBe(3);
    const error = r.events.at(-1)!.error!;
    expect(error.code).toBe('GUARD');
    expect(error.message).toContain(`system identifier ${otherSysid}`);
    expect(results(r.events)).toContain('build/pgbackrest/restore@db3=failed');
    expect(changedSteps(r.events).filter((s) => s.startsWith('build/pgbackrest/restore') || s.startsWith('build/start'))).toEqual([]);

    // Still its own cluster, with its table and rows.
    expect(await otherRows()).toBe('25');
    // rebuild is the user asking for exactly this host to be rebuilt; but this cluster holds user data (a
    // table), so rebuild alone is refused too, and only naming its system identifier lets plan replace it.
    const rebuild = await lab.pgplay(['plan', join(PLAYBOOKS, 'standby-from-backup.yml'), '-i', file, '-p', 'host=db3', '-p', 'rebuild=true', '--output', 'json']);
    expect(rebuild.exitCode).toBe(3);
    expect(rebuild.stdout).toContain(`-p replace_sysid=${otherSysid}`);
    const named = await lab.pgplay([
      'plan', join(PLAYBOOKS, 'standby-from-backup.yml'), '-i', file, '-p', 'host=db3', '-p', 'rebuild=true', '-p', `replace_sysid=${otherSysid}`, '--output', 'json',
    ]);
    expect(named.exitCode).toBe(0);
    expect(named.stdout).toContain(`replaces another cluster, system identifier ${otherSysid}`);
    expect(await otherRows()).toBe('25');
  });

  it("standby-from-backup refuses (exit 3) to restore over the crashed primary's own PGDATA, whatever the flags; its rows survive", async () => {
    await lab.psql('db1', 'CREATE TABLE crash_rows AS SELECT g AS id FROM generate_series(1, 100) g', 'app');
    const file = await inventory('crashed-primary', (inv) => {
      inv.hosts.db3 = db3('db2', alias, DB3_PORT, join(lab.dir, 'db3', 'run'));
    });
    // The crash: the primary stops without a shutdown checkpoint.
    const pid = (await lab.postmasterPid('db1'))!;
    await mustAsPostgres([`${BIN}/pg_ctl`, 'stop', '-D', lab.pgdata('db1'), '-m', 'immediate', '-w']);
    expect(await waitGone(pid)).toBe(true);

    try {
      const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'standby-from-backup.yml'), '-i', file, '-p', 'host=db3', '--output', 'json']);
      expect(plan.exitCode, results(events(plan.stdout)).join(' ')).toBe(3);
      for (const extra of [[], ['-p', 'rebuild=true'], ['--from', 'build']]) {
        const r = await lab.run('standby-from-backup.yml', ['-i', file, '-p', 'host=db3', '--yes', ...extra]);
        expect(r.exitCode).toBe(3);
        const error = r.events.at(-1)!.error!;
        expect(error.code).toBe('GUARD');
        expect(error.message).toContain("the primary db1's PGDATA");
      }
      // Nothing turned the primary's directory into a standby.
      for (const f of ['standby.signal', 'recovery.signal']) {
        await expect(readFile(join(lab.pgdata('db1'), f))).rejects.toMatchObject({ code: 'ENOENT' });
      }
    } finally {
      await mustAsPostgres([`${BIN}/pg_ctl`, 'start', '-D', lab.pgdata('db1'), '-w', '-l', join(lab.dir, 'db1', 'log', 'test-restart.log')]);
    }
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db1', 'SELECT count(*) FROM crash_rows', 'app')).toBe('100');
    expect(await accounts()).toBe('1000');
  });

  // ---- Finding 3: a drill whose scratch PGDATA is the primary's --------------------------------------

  it("validate and every run reject (exit 2, file:line:col) a drill host with the primary's address and pgdata", async () => {
    const pid = await lab.postmasterPid('db1');
    const file = await inventory('same-pgdata', (inv) => {
      inv.hosts.drill1.pgdata = lab.pgdata('db1');
    });
    const validate = await lab.pgplay(['validate', file]);
    expect(validate.exitCode).toBe(2);
    expect(validate.stderr + validate.stdout).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: .*drill1.*db1`));
    for (const cmd of ['plan', 'run']) {
      const r = await lab.pgplay([cmd, join(PLAYBOOKS, 'pitr-drill.yml'), '-i', file, '--yes']);
      expect(r.exitCode).toBe(2);
    }
    // The same address and port, and a relative pgdata, are rejected the same way.
    const samePort = await inventory('same-port', (inv) => {
      inv.hosts.drill1.postgres.port = lab.port('db1');
    });
    const relative = await inventory('relative', (inv) => {
      inv.hosts.drill1.pgdata = 'drill1/data';
    });
    for (const f of [samePort, relative]) {
      const r = await lab.pgplay(['validate', f]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr + r.stdout).toContain(`${f}:`);
    }
    // The lab itself (every host on 127.0.0.1 with the local transport, own pgdata and port) stays valid.
    expect((await lab.pgplay(['validate', join(lab.dir, 'inventory.yml')])).exitCode).toBe(0);

    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await accounts()).toBe('1000');
    expect(await lab.psql('db1', 'SELECT count(*) FROM crash_rows', 'app')).toBe('100');
  });

  it("pitr-drill refuses (exit 3) when the drill host's PGDATA is the primary's directory under another path, in plan and under --from", async () => {
    const pid = await lab.postmasterPid('db1');
    const file = await inventory('alias', (inv) => {
      inv.hosts.drill1.pgdata = alias;
    });
    expect((await lab.pgplay(['validate', file])).exitCode).toBe(0);

    const plan = await lab.pgplay(['plan', join(PLAYBOOKS, 'pitr-drill.yml'), '-i', file, '--output', 'json']);
    expect(plan.exitCode, results(events(plan.stdout)).join(' ')).toBe(3);
    for (const extra of [[], ['--from', 'pgbackrest/restore-latest']]) {
      const r = await lab.run('pitr-drill.yml', ['-i', file, '--yes', ...extra]);
      expect(r.exitCode, `${extra.join(' ')}: ${results(r.events).join(' ')}`).toBe(3);
      const error = r.events.at(-1)!.error!;
      expect(error.code).toBe('GUARD');
      expect(error.message).toContain("the primary db1's PGDATA");
      expect(r.stdout).not.toContain('DRILL PASSED');
    }
    // Started at the teardown, the run made no copy, so its teardown steps touch nothing (they remove only a
    // copy made by this drill: defined(drill_pgdata)), and with no evidence the drill fails (exit 1).
    for (const from of ['teardown-stop', 'teardown-data']) {
      const r = await lab.run('pitr-drill.yml', ['-i', file, '--yes', '--from', from]);
      expect(r.exitCode, results(r.events).join(' ')).toBe(1);
      expect(results(r.events)).toContain('teardown-data@drill1=skipped');
      expect(results(r.events).filter((x) => x.startsWith('teardown-'))).toEqual(results(r.events).filter((x) => x.startsWith('teardown-') && x.endsWith('=skipped')));
      expect(r.stdout).not.toContain('DRILL PASSED');
    }
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await accounts()).toBe('1000');
    expect(await lab.psql('db1', 'SELECT count(*) FROM crash_rows', 'app')).toBe('100');
  });

  it("a step on another host never removes, replaces or writes a path inside the primary's PGDATA, by its path or through a link (exit 3); pg_control and the rows stay", async () => {
    const pgdata = lab.pgdata('db1');
    const pid = await lab.postmasterPid('db1');
    const book = join(root, 'remove-inside.yml');
    // Directories and files, named by the primary's PGDATA path (the inventory says so) or through a link
    // to it (only the directories' real paths, read on db2's machine, say so); removed, or replaced by a link.
    const removals = [join(pgdata, 'global'), join(pgdata, 'postmaster.opts'), join(alias, 'pg_wal'), join(alias, 'global', 'pg_control')].map((path) => ({ path, state: 'absent', force: true }));
    const links = [join(pgdata, 'postmaster.opts'), join(alias, 'global', 'pg_control')].map((path) => ({ path, state: 'link', src: '/dev/null', force: true }));
    // Written (by the inventory's paths): a file's mode, a file touched, the directory itself.
    const writes = [
      { path: join(pgdata, 'global', 'pg_control'), state: 'file', mode: '0000' },
      { path: join(pgdata, 'standby.signal'), state: 'touch' },
      { path: pgdata, state: 'directory', mode: '0777' },
    ];
    for (const file of [...removals, ...links, ...writes]) {
      const path = file.path;
      await writeFile(book, `name: remove-inside\nsteps:\n  - id: remove\n    hosts: db2\n    file: ${JSON.stringify(file)}\n`);
      const r = await lab.pgplay(['run', book, '-i', join(lab.dir, 'inventory.yml'), '--yes', '--output', 'json']);
      expect(r.exitCode, `${path}: ${results(events(r.stdout)).join(' ')}`).toBe(3);
      const error = events(r.stdout).at(-1)!.error!;
      expect(error.code).toBe('GUARD');
      expect(error.message).toContain("the primary db1's PGDATA");
    }
    // A template rendered over the primary's postgresql.auto.conf.
    const autoConf = await readFile(join(pgdata, 'postgresql.auto.conf'), 'utf8');
    await writeFile(join(root, 'inside.conf.hbs'), "primary_conninfo = 'host=nowhere'\n");
    await writeFile(book, `name: write-inside\nsteps:\n  - id: write\n    hosts: db2\n    template: { src: inside.conf.hbs, dest: ${JSON.stringify(join(pgdata, 'postgresql.auto.conf'))} }\n`);
    const written = await lab.pgplay(['run', book, '-i', join(lab.dir, 'inventory.yml'), '--yes', '--output', 'json']);
    expect(written.exitCode, results(events(written.stdout)).join(' ')).toBe(3);
    expect(events(written.stdout).at(-1)!.error!.message).toContain("the primary db1's PGDATA");
    expect(await readFile(join(pgdata, 'postgresql.auto.conf'), 'utf8')).toBe(autoConf);

    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(true);
    expect(existsSync(join(pgdata, 'postmaster.opts'))).toBe(true);
    expect(existsSync(join(pgdata, 'pg_wal'))).toBe(true);
    expect(existsSync(join(pgdata, 'standby.signal'))).toBe(false);
    expect((await stat(join(pgdata, 'global', 'pg_control'))).mode & 0o777).toBe(0o600);
    expect((await stat(pgdata)).mode & 0o777).toBe(0o700);
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await accounts()).toBe('1000');
  });

  it("nor one inside it under another name: db1's PGDATA bind-mounted elsewhere, as a container's data directory is on its host (exit 3)", async () => {
    const pgdata = lab.pgdata('db1');
    const pid = await lab.postmasterPid('db1');
    const mnt = join(root, 'db1-mounted');
    await postgresDir(mnt, '0700');
    const book = join(root, 'remove-mounted.yml');
    for (const file of [{ path: join(mnt, 'global'), state: 'absent', force: true }, { path: join(mnt, 'postmaster.opts'), state: 'absent' }]) {
      await writeFile(book, `name: remove-mounted\nsteps:\n  - id: remove\n    hosts: db2\n    file: ${JSON.stringify(file)}\n`);
      // pgplay in a mount namespace of its own where db1's PGDATA is also at mnt: the mount ends with it.
      const argv = ['node', CLI, 'run', book, '-i', join(lab.dir, 'inventory.yml'), '--yes', '--output', 'json'];
      const r = finished(
        await execa('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', pgdata, mnt, ...argv], {
          reject: false,
          env: { ...lab.env, CI: 'true' },
          cwd: root,
          ...cliLimits(),
        }),
      );
      expect(r.exitCode, `${file.path}: ${results(events(r.stdout)).join(' ')} ${r.stderr}`).toBe(3);
      const error = events(r.stdout).at(-1)!.error!;
      expect(error.code).toBe('GUARD');
      expect(error.message).toContain(`${mnt} is db1's PGDATA, the same directory on the same machine`);
    }
    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(true);
    expect(existsSync(join(pgdata, 'postmaster.opts'))).toBe(true);
    expect(await lab.postmasterPid('db1')).toBe(pid);
    expect(await accounts()).toBe('1000');
  });
});
