/**
 * prepare.yml on a Debian machine of the rig (own mount namespace, sshd at 127.0.47.1:22, PostgreSQL 15
 * `main` made by pg_createcluster), over SSH with an inventory that says `layout: debian` and sets no
 * host vars:
 *
 * - Debian's postgresql.conf already includes conf.d: nothing is appended to it (byte for byte the same),
 *   and pgplay's settings land in /etc/postgresql/15/main/conf.d/pgplay.conf, where the server reads them;
 * - listen_addresses stays the machine's own (it covers the inventory address): pgplay writes none;
 * - pgplay's block goes into /etc/postgresql/15/main/pg_hba.conf before Debian's first rule and its
 *   "DO NOT DISABLE!" note, every line of Debian's file stays, owner and mode stay;
 * - the replication role's password reaches the server only as a SCRAM verifier (log_statement = all:
 *   the server log has the verifier, never the password) and a replication login with it works;
 * - a second run changes nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_DIR, PG_CLUSTER, PG_VERSION, startMachines, type Machines } from '../support/machines.js';
import { jsonEvents, pgplay, writeRigInventory } from './fixtures/ssh/support.js';

const PASSWORD = 'Debian-Prepare-Secret-52931';
const LOG = `/var/log/postgresql/postgresql-${PG_VERSION}-${PG_CLUSTER}.log`;

describe('prepare.yml on a Debian machine (layout debian, over SSH)', () => {
  let rig: Machines;
  let work: string;
  let inventory: string;
  const run = async (args: string[]) => {
    const r = await pgplay(['run', 'playbooks/prepare.yml', '-i', inventory, '--output', 'json', ...args], join(work, 'state'));
    const steps = jsonEvents(r.stdout).filter((e) => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}`);
    return { ...r, steps };
  };
  const alpha = () => rig.machines.alpha!;
  const cat = async (path: string) => (await alpha().exec(['cat', path])).stdout;
  const statOf = async (path: string) => (await alpha().exec(['stat', '-c', '%U:%G:%a', path])).stdout.trim();

  beforeAll(async () => {
    rig = await startMachines([{ name: 'alpha', address: '127.0.47.1' }]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-prepare-debian-'));
    await writeFile(join(work, 'replication-password'), `${PASSWORD}\n`, { mode: 0o600 });
    inventory = await writeRigInventory(join(work, 'inventory.yml'), rig, {
      lines: [`replication: { user: replicator, password: { file: ${join(work, 'replication-password')} } }`],
      hosts: { alpha: 'role: primary' },
    });
    // Every statement in the server log, from the start; wal_log_hints (pgplay's default, a restart away)
    // already on, so that the run needs no restart (service managers are another test's subject).
    await alpha().psql("ALTER SYSTEM SET log_statement = 'all'");
    await alpha().psql("ALTER SYSTEM SET wal_log_hints = 'on'");
    const restart = await alpha().exec(['pg_ctlcluster', String(PG_VERSION), PG_CLUSTER, 'restart']);
    if (restart.exitCode !== 0) throw new Error(`pg_ctlcluster restart: ${restart.stderr}`);
  });

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('adds its include file, role and pg_hba block, keeping Debian\'s files; a second run changes nothing', async () => {
    const conf = await cat(`${CONFIG_DIR}/postgresql.conf`);
    const hba = await cat(`${CONFIG_DIR}/pg_hba.conf`);
    const hbaAttrs = await statOf(`${CONFIG_DIR}/pg_hba.conf`);
    expect(conf).toMatch(/^include_dir = 'conf\.d'/m);

    const first = await run(['--yes']);
    expect(first.exitCode, `${first.stdout}\n${first.stderr}`).toBe(0);
    expect(first.steps).toEqual(expect.arrayContaining(['include-dir@alpha=ok', 'settings@alpha=changed', 'replication-role@alpha=changed', 'hba@alpha=changed']));

    // postgresql.conf: nothing appended.
    expect(await cat(`${CONFIG_DIR}/postgresql.conf`)).toBe(conf);
    // The settings are where Debian's server reads them, and in force.
    expect(await alpha().psql("SELECT count(*) FROM pg_file_settings WHERE sourcefile = '/etc/postgresql/15/main/conf.d/pgplay.conf' AND applied")).not.toBe('0');
    expect(await alpha().psql('SHOW wal_keep_size')).toBe('1GB');
    // listen_addresses: the machine's own value covers the inventory address and stays.
    expect(await cat(`${CONFIG_DIR}/conf.d/pgplay.conf`)).not.toMatch(/^listen_addresses/m);
    expect(await alpha().psql('SHOW listen_addresses')).toBe(alpha().address);

    // pg_hba.conf: every line of Debian's kept, the block before its first rule and that rule's note.
    const after = await cat(`${CONFIG_DIR}/pg_hba.conf`);
    const begin = after.indexOf('# BEGIN pgplay managed block');
    const end = after.indexOf('# END pgplay managed block');
    expect(begin).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(begin);
    expect(end).toBeLessThan(after.indexOf('# DO NOT DISABLE!'));
    expect(after.slice(0, begin) + after.slice(after.indexOf('\n', end) + 1).replace(/^\n/, '')).toBe(hba);
    expect(await statOf(`${CONFIG_DIR}/pg_hba.conf`)).toBe(hbaAttrs);
    expect(await alpha().psql('SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL')).toBe('0');

    // The password: a SCRAM verifier in pg_authid and in the log, the password in neither, and it logs in.
    const verifier = await alpha().psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'replicator'");
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:/);
    const log = await cat(LOG);
    expect(log).toContain(`PASSWORD '${verifier}'`);
    expect(log).not.toContain(PASSWORD);
    expect(first.stdout + first.stderr).not.toContain(PASSWORD);
    const login = await alpha().exec(
      ['psql', '-XAtq', '-d', `host=${alpha().address} port=5432 user=replicator replication=true dbname=replication`, '-c', 'IDENTIFY_SYSTEM'],
      { user: 'postgres', env: { PGPASSWORD: PASSWORD } },
    );
    expect(login.exitCode, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/^\d+\|1\|/);

    const second = await run([]);
    expect(second.exitCode, `${second.stdout}\n${second.stderr}`).toBe(0);
    expect(second.steps.filter((s) => s.endsWith('=changed'))).toEqual([]);
  });
});
