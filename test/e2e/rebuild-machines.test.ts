/**
 * Rebuilding a freshly installed host on separate machines (issue 11 item 8): two machines of the rig
 * (test/support/machines.ts, subnet 127.0.48.x: no other file uses it), each with the PostgreSQL 15
 * `main` cluster Debian's pg_createcluster made and pg_ctlcluster started, read-write. The inventory
 * (layout debian, over SSH, no host vars) makes alpha the primary and bravo a standby of it, so bravo's
 * cluster is exactly what a package leaves on a new machine: another system identifier, no user data.
 *
 * - standby-from-backup without rebuild: exit 3, the message names `-p rebuild=true`, bravo's system
 *   identifier and that it is not alpha's cluster; bravo still runs, its identifier unchanged.
 * - the same cluster holding a table with rows: refused (exit 3) even with rebuild, naming what it holds
 *   and `-p replace_sysid=<id>`; the rows are still there, the server still runs.
 *
 * That rebuild=true then replaces the cluster and the standby streams is proven with real PostgreSQL and
 * pgBackRest in test/e2e/rebuild-fresh.test.ts (pgdata layout); on these machines the debian layout's
 * restore path (the config a restored standby needs, the replication role, pgBackRest's config path) is
 * other slices' work, proven by the rig procedure suites.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMachines, type Machines } from '../support/machines.js';
import { jsonEvents, pgplay, writeRigInventory } from './fixtures/ssh/support.js';

const PLAYBOOK = resolve('playbooks/standby-from-backup.yml');
const SYSID = 'SELECT system_identifier FROM pg_control_system()';

describe('standby-from-backup over the cluster a package just created (separate machines, Debian layout)', () => {
  let rig: Machines;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'alpha', address: '127.0.48.1' },
      { name: 'bravo', address: '127.0.48.2' },
    ]);
    work = await mkdtemp(join(tmpdir(), 'pgplay-rebuild-machines-'));
    // The inventory a DBA writes for a standby: the replication role and its password (the run checks both
    // before its first change; the refusals below come first all the same).
    process.env.PGPLAY_REBUILD_REPL_PW = 'rebuild-machines-pw';
    inventory = await writeRigInventory(join(work, 'inventory.yml'), rig, {
      lines: ['replication: { user: replicator, password: { env: PGPLAY_REBUILD_REPL_PW } }'],
      hosts: { alpha: 'role: primary', bravo: 'role: standby, upstream: alpha' },
    });
    // As a DBA would before a first standby: the replication role and pgplay's pg_hba block on alpha.
    const prepared = await pgplay(['run', resolve('playbooks/prepare.yml'), '-i', inventory, '--yes'], join(work, 'state-prepare'));
    expect(prepared.exitCode, `${prepared.stdout}\n${prepared.stderr}`).toBe(0);
  });

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const run = async (name: string, extra: string[]) => {
    const r = await pgplay(['run', PLAYBOOK, '-i', inventory, '-p', 'host=bravo', '--yes', '--output', 'json', ...extra], join(work, `state-${name}`));
    const events = jsonEvents(r.stdout);
    const end = events.findLast((e) => e.type === 'run-end') as { error?: { code: string; message: string; hint?: string } } | undefined;
    const changed = events.filter((e) => e.type === 'step-result' && e.status === 'changed').map((e) => `${e.step}@${e.host}`);
    return { ...r, error: end?.error, changed };
  };

  it('without rebuild: exit 3 naming -p rebuild=true, the system identifier and whose cluster it is; bravo untouched and running', async () => {
    const bravo = rig.machines.bravo!;
    const fresh = await bravo.psql(SYSID);
    const primary = await rig.machines.alpha!.psql(SYSID);
    const pid = await bravo.postmasterPid();
    expect(pid).toBeDefined();

    const r = await run('plain', []);
    expect(r.exitCode, `${r.stdout.slice(-2000)}\n${r.stderr}`).toBe(3);
    expect(r.error?.code).toBe('GUARD');
    expect(r.error?.message).toContain(`bravo is running read-write (not in recovery), system identifier ${fresh}: not the cluster of its upstream alpha (system identifier ${primary})`);
    expect(r.error?.message).toContain('-p rebuild=true');
    expect(r.changed).toEqual([]);

    expect(await bravo.postmasterPid()).toBe(pid);
    expect(await bravo.psql(SYSID)).toBe(fresh);
    expect(await bravo.psql('SELECT pg_is_in_recovery()')).toBe('f');
  });

  it('with a table with rows: refused (exit 3) even with rebuild, naming -p replace_sysid; rows and server untouched', async () => {
    const bravo = rig.machines.bravo!;
    await bravo.psql('CREATE TABLE keepme AS SELECT g AS id FROM generate_series(1, 40) g');
    const id = await bravo.psql(SYSID);
    const pid = await bravo.postmasterPid();

    const r = await run('user-data', ['-p', 'rebuild=true']);
    expect(r.exitCode, `${r.stdout.slice(-2000)}\n${r.stderr}`).toBe(3);
    expect(r.error?.code).toBe('GUARD');
    expect(r.error?.message).toContain(`refusing to stop the server of /var/lib/postgresql/15/main on bravo: it holds a cluster with system identifier ${id}`);
    expect(r.error?.message).toContain('with user data: 1 table, index or sequence made after initdb');
    expect(r.error?.hint).toContain(`-p host=bravo -p rebuild=true -p replace_sysid=${id}`);
    expect(r.changed).toEqual([]);

    expect(await bravo.postmasterPid()).toBe(pid);
    expect(await bravo.psql('SELECT count(*) FROM keepme')).toBe('40');
    expect(await bravo.psql('SELECT pg_is_in_recovery()')).toBe('f');
    expect(await rig.machines.alpha!.psql('SELECT pg_is_in_recovery()')).toBe('f');
  });
});
