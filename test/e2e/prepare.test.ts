/**
 * prepare.yml, pgplay's block in pg_hba.conf and the prerequisite checks of the procedures, on the lab
 * (PostgreSQL 15, pgBackRest 2.45, pgdata layout), through the CLI:
 *
 * - prepare is idempotent on a live primary, and the replication role's password reaches the server only
 *   as a SCRAM verifier: with log_statement = all the server's log holds the verifier, never the password,
 *   and a login with the password works;
 * - a rule the user added to the primary's pg_hba.conf survives on the primary and on a standby built from
 *   the backup (the standby's file is the restored one plus pgplay's block);
 * - standby-from-backup refuses (exit 3) naming what is missing and prepare.yml when the replication role
 *   lost REPLICATION or a rule before pgplay's block rejects the standby's address; prepare fixes the role.
 *
 * Ports 26470-26472 (a lab of its own).
 */
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedSteps, createLab, labUp, results, type TestLab } from './lab-helpers.js';

const USER_RULE = 'host    pgplay_user_db  all  10.99.0.0/16  scram-sha-256';
const BEGIN = '# BEGIN pgplay managed block';

describe('prepare.yml and the managed pg_hba.conf block on the lab', () => {
  let lab: TestLab;
  const hbaOf = (h: 'db1' | 'db2') => readFile(join(lab.pgdata(h), 'pg_hba.conf'), 'utf8');

  beforeAll(async () => {
    lab = await createLab(26470, 'prepare');
    await labUp(lab);
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('runs on the live primary and a second run changes nothing', async () => {
    const first = await lab.run('prepare.yml', ['--yes']);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    // The lab made the role with this very password: the stored verifier matches, nothing is sent.
    expect(results(first.events)).toContain('replication-role@db1=ok');
    expect(results(first.events)).toContain('hba@db1=ok');
    const second = await lab.run('prepare.yml');
    expect(second.exitCode).toBe(0);
    expect(changedSteps(second.events)).toEqual([]);
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('a user\'s pg_hba.conf rule survives on the primary and on a standby built from the backup', async () => {
    const before = await hbaOf('db1');
    await writeFile(join(lab.pgdata('db1'), 'pg_hba.conf'), `${before}${USER_RULE}\n`);
    await lab.psql('db1', 'SELECT pg_reload_conf()');

    const backup = await lab.run('nightly-backup.yml', ['-p', 'type=full', '--yes']);
    expect(backup.exitCode).toBe(0);
    const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(standby.stderr).toBe('');
    expect(standby.exitCode).toBe(0);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');

    const db2 = await hbaOf('db2');
    expect(db2).toContain(USER_RULE);
    expect(db2).toContain(BEGIN);
    // The block comes before initdb's rules (first match wins) and initdb's rules are still there.
    expect(before.indexOf(BEGIN)).toBeGreaterThanOrEqual(0);
    expect(before.indexOf(BEGIN)).toBeLessThan(before.indexOf('\nlocal   all             all'));
    expect(db2.split('\n').filter((l) => l === BEGIN)).toHaveLength(1);
    expect(await hbaOf('db1')).toContain(USER_RULE);
    // The server reads the user's rule on the standby too.
    expect(await lab.psql('db2', "SELECT count(*) FROM pg_hba_file_rules WHERE 'pgplay_user_db' = ANY (database)")).toBe('1');

    const again = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(again.exitCode).toBe(0);
    expect(changedSteps(again.events)).toEqual([]);
  });

  it('standby-from-backup refuses (exit 3) when the role cannot replicate, naming it and prepare.yml; prepare fixes it', async () => {
    await lab.psql('db1', 'ALTER ROLE replicator NOREPLICATION');
    const refused = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
    expect(refused.exitCode).toBe(3);
    expect(refused.stdout).toMatch(/the replication role replicator \(LOGIN REPLICATION\)/);
    expect(refused.stdout).toContain('prepare.yml');
    expect(changedSteps(refused.events)).toEqual([]);

    const prepared = await lab.run('prepare.yml');
    expect(prepared.exitCode).toBe(0);
    expect(results(prepared.events)).toContain('replication-role@db1=changed');
    expect(await lab.psql('db1', "SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'")).toBe('t');
    const ok = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
    expect(ok.exitCode).toBe(0);
  });

  it('standby-from-backup refuses when a rule before pgplay\'s block rejects the standby\'s address', async () => {
    const hba = await hbaOf('db1');
    await writeFile(join(lab.pgdata('db1'), 'pg_hba.conf'), `host replication replicator 127.0.0.1/32 reject\n${hba}`);
    try {
      const refused = await lab.run('standby-from-backup.yml', ['-p', 'host=db2']);
      expect(refused.exitCode).toBe(3);
      expect(refused.stdout).toMatch(/a pg_hba.conf rule letting replicator replicate from 127\.0\.0\.1/);
      expect(refused.stdout).toContain('prepare.yml');
    } finally {
      await writeFile(join(lab.pgdata('db1'), 'pg_hba.conf'), hba);
    }
  });

  it('a new password reaches the server only as a SCRAM verifier, even with log_statement = all', async () => {
    const password = 'Pr3pare-Only-Verifier-81742';
    const secretFile = join(lab.dir, 'secrets', 'new-replication-password');
    await writeFile(secretFile, `${password}\n`, { mode: 0o600 });
    const inventory = parse(await readFile(join(lab.dir, 'inventory.yml'), 'utf8'));
    inventory.replication.password = { file: secretFile };
    const invFile = join(lab.dir, 'inventory-new-password.yml');
    await writeFile(invFile, stringify(inventory));

    await lab.psql('db1', "ALTER SYSTEM SET log_statement = 'all'");
    await lab.psql('db1', 'SELECT pg_reload_conf()');
    try {
      const plan = await lab.run('prepare.yml', ['-i', invFile, '--check']);
      expect(plan.exitCode).toBe(0);
      expect(results(plan.events)).toContain('replication-role@db1=changed');

      const r = await lab.run('prepare.yml', ['-i', invFile]);
      expect(r.exitCode).toBe(0);
      expect(results(r.events)).toContain('replication-role@db1=changed');
      expect(r.stdout).not.toContain(password);
      const verifier = await lab.psql('db1', "SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'");
      expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:/);

      // The server logged the statement (log_statement = all) with the verifier in it, never the password.
      const logged = await execa('grep', ['-r', '-h', '-F', 'ALTER ROLE "replicator" WITH', lab.dir], { reject: false });
      expect(logged.stdout).toContain(`PASSWORD '${verifier}'`);
      const leaks = await execa('grep', ['-r', '-l', '-F', password, lab.dir, lab.stateDir], { reject: false });
      // Only the secret file itself and the standby's 0600 .pgpass (prepare keeps it) hold the password.
      expect(leaks.stdout.split('\n').filter((f) => f && f !== secretFile && !f.endsWith('/pgpass'))).toEqual([]);

      // The password logs in (scram-sha-256 over TCP, the lab's loopback rule).
      const login = await execa('/usr/lib/postgresql/15/bin/psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(lab.port('db1')), '-U', 'replicator', '-d', 'postgres', '-c', 'SELECT current_user'], {
        env: { PGPASSWORD: password },
        reject: false,
      });
      expect(login.stdout.trim()).toBe('replicator');

      const again = await lab.run('prepare.yml', ['-i', invFile]);
      expect(results(again.events)).toContain('replication-role@db1=ok');
    } finally {
      await lab.psql('db1', 'ALTER SYSTEM RESET log_statement');
      await lab.psql('db1', 'SELECT pg_reload_conf()');
      // Back to the lab's own password.
      await lab.run('prepare.yml');
    }
  });
});
