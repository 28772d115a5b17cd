/**
 * The break-glass export (issue 16 item 5) on separate machines (test/support/machines.ts, subnet
 * 127.0.57.x: no other file uses it): db1 the primary, db2 the standby-to-be (the `main` cluster that
 * Debian's pg_createcluster made: another system identifier, no user data), bk1 the repository. pgplay
 * runs prepare.yml and nightly-backup.yml; then `pgplay plan standby-from-backup --export-shell FILE`
 * writes the build as a shell script, and the test copies it to the machines and runs its parts by hand,
 * `sh FILE N` on each part's machine, without pgplay: the standby streams.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMachines, type Machine, type Machines } from '../support/machines.js';
import { pgplay, writeRigInventory } from './fixtures/ssh/support.js';

const SUBNET = '127.0.57';
const SYSID = 'SELECT system_identifier FROM pg_control_system()';

describe('plan --export-shell: a standby built by hand from the exported script (separate machines)', () => {
  let rig: Machines;
  let work: string;
  let inventory: string;
  let stateDir: string;
  const password = `repl-${randomBytes(12).toString('hex')}`;
  const savedPassword = process.env.PGPLAY_REPLICATION_PASSWORD;
  const m = (name: 'db1' | 'db2' | 'bk1'): Machine => rig.machines[name]!;

  beforeAll(async () => {
    process.env.PGPLAY_REPLICATION_PASSWORD = password;
    rig = await startMachines([
      { name: 'db1', address: `${SUBNET}.1` },
      { name: 'db2', address: `${SUBNET}.2` },
      { name: 'bk1', address: `${SUBNET}.3`, postgres: false },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-export-shell-'));
    stateDir = join(work, 'state');
    inventory = await writeRigInventory(join(work, 'inventory.yml'), rig, {
      lines: ['replication: { user: replicator, password: { env: PGPLAY_REPLICATION_PASSWORD }, slots: true }', 'backup: { tool: pgbackrest, repoHost: bk1 }'],
      hosts: { db1: 'role: primary', db2: 'role: standby, upstream: db1', bk1: 'role: repository' },
    });
    // What the DBA had before pgplay: the superuser's password, which the repository host's globals export
    // (nightly-backup's pg_dumpall on bk1) logs in with from its own ~/.pgpass.
    const superuserPassword = randomBytes(12).toString('hex');
    await m('db1').psql(`ALTER ROLE postgres PASSWORD '${superuserPassword}'`);
    const pgpass = await m('bk1').exec(['sh', '-c', `umask 077; printf '%s\\n' '*:5432:*:postgres:${superuserPassword}' > ~postgres/.pgpass; chown postgres: ~postgres/.pgpass`]);
    expect(pgpass.exitCode, pgpass.stderr).toBe(0);
    for (const playbook of ['prepare.yml', 'nightly-backup.yml']) {
      const r = await pgplay(['run', playbook, '-i', inventory, '--yes'], stateDir);
      expect(r.exitCode, `${playbook}\n${r.stdout.slice(-3000)}\n${r.stderr}`).toBe(0);
      // pgBackRest on bk1 lists db1 and db2: two read-write clusters make its stanza-create refuse
      // ("more than one primary cluster found"). db2's package cluster is stopped, as a DBA would.
      if (playbook === 'prepare.yml') expect((await m('db2').exec(['pg_ctlcluster', '15', 'main', 'stop'])).exitCode).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    if (savedPassword === undefined) delete process.env.PGPLAY_REPLICATION_PASSWORD;
    else process.env.PGPLAY_REPLICATION_PASSWORD = savedPassword;
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('an action that cannot export fails the export naming the step; nothing is written', async () => {
    const file = join(work, 'backup.sh');
    const r = await pgplay(['plan', 'nightly-backup.yml', '-i', inventory, '--export-shell', file], stateDir);
    expect(r.exitCode, `${r.stdout.slice(-2000)}\n${r.stderr}`).toBe(2);
    expect(r.stderr).toMatch(/cannot export the plan to shell: .*step pgbackrest\/backup-(?:full|changes) on bk1: pgbackrest backup is not exported/);
    expect(existsSync(file)).toBe(false);
  }, 120_000);

  it('the exported standby build, run by hand part by part on each machine, makes db2 a streaming standby', async () => {
    const file = join(work, 'standby-db2.sh');
    const db2Sysid = (await m('db2').exec(['sh', '-c', '/usr/lib/postgresql/15/bin/pg_controldata /var/lib/postgresql/15/main | sed -n "s/^Database system identifier: *//p"'])).stdout.trim();
    expect(db2Sysid).toMatch(/^\d+$/);
    const r = await pgplay(['plan', 'standby-from-backup.yml', '-i', inventory, '-p', 'host=db2', '-p', 'rebuild=true', '--export-shell', file], stateDir);
    expect(r.exitCode, `${r.stdout.slice(-3000)}\n${r.stderr}`).toBe(0);
    // The plan changed nothing: db2 still holds its own cluster, stopped.
    expect(await m('db2').postmasterPid()).toBeUndefined();
    expect((await m('db2').exec(['sh', '-c', '/usr/lib/postgresql/15/bin/pg_controldata /var/lib/postgresql/15/main | grep "^Database system identifier"'])).stdout).toContain(db2Sysid);

    const script = readFileSync(file, 'utf8');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(script).not.toContain(password);
    expect(script).toContain('"${PGPLAY_REPLICATION_PASSWORD}"');
    expect((await execa('grep', ['-c', password, file], { reject: false })).stdout.trim()).toBe('0');
    const syntax = await execa('sh', ['-n', file], { reject: false });
    expect(syntax.exitCode, syntax.stderr).toBe(0);
    // The checks are comments; the parts are listed in order with their host.
    expect(script).toMatch(/^# \[target-is-standby on db2\] /m);
    const parts = [...script.matchAll(/^# {3}part (\d+): on (db1|db2|bk1) \(/gm)].map((p) => ({ n: p[1]!, host: p[2] as 'db1' | 'db2' | 'bk1' }));
    expect(parts.map((p) => p.host)).toEqual(['db2', 'db1', 'db2', 'db1']);

    // As a human would: the reviewed script copied to each machine that runs a part (each has its own /tmp).
    const remote = '/tmp/standby-db2.sh';
    for (const host of new Set(parts.map((p) => p.host))) {
      const copied = await m(host).exec(['sh', '-c', `umask 077 && cat > ${remote}`], { input: script });
      expect(copied.exitCode, copied.stderr).toBe(0);
    }
    // Without the secret in the environment a part that needs it stops before doing anything.
    const noSecret = await m('db2').exec(['sh', remote, '1']);
    expect(noSecret.exitCode).not.toBe(0);
    expect(noSecret.stderr).toContain('PGPLAY_REPLICATION_PASSWORD');

    for (const part of parts) {
      const run = await m(part.host).exec(['sh', remote, part.n], { env: { PGPLAY_REPLICATION_PASSWORD: password } });
      expect(run.exitCode, `part ${part.n} on ${part.host}:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-3000)}`).toBe(0);
    }

    expect(await m('db2').psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await m('db1').psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await m('db2').psql(SYSID)).toBe(await m('db1').psql(SYSID));
    expect(await m('db1').psql('SELECT application_name, state FROM pg_stat_replication')).toBe('db2|streaming');
    expect(await m('db1').psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'pgplay_db2'")).toBe('t');
    expect((await m('db2').exec(['stat', '-c', '%U %a', '/var/lib/postgresql/.pgpass'])).stdout.trim()).toBe('postgres 600');

    // A row written on db1 arrives on db2.
    await m('db1').psql("CREATE TABLE exported (id int PRIMARY KEY); INSERT INTO exported VALUES (1), (2), (3)");
    await m('db1').psql('SELECT pg_current_wal_flush_lsn()');
    let rows = '';
    for (let i = 0; i < 600 && rows !== '3'; i++) {
      rows = await m('db2').psql('SELECT count(*) FROM exported').catch(() => '');
      if (rows !== '3') await new Promise((r) => setTimeout(r, 100));
    }
    expect(rows).toBe('3');

    // pgplay agrees: the standby it would build is there (a plan now changes nothing on db2's server).
    const after = await pgplay(['plan', 'standby-from-backup.yml', '-i', inventory, '-p', 'host=db2', '--output', 'json'], stateDir);
    expect(after.exitCode, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/"step":"build\/receiver"/);
  }, 300_000);
});
