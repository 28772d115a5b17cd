import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { LocalTransport } from '../../src/transports/local.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import type { Host } from '../../src/model/inventory.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

async function gather(host: Host) {
  const t = new LocalTransport(host);
  try {
    const r = await t.exec(factsArgv(host), { become: PG_OS_USER });
    expect(r.exitCode).toBe(0);
    return parseFacts(r.stdout);
  } finally {
    await t.close();
  }
}

describe('facts from a real PostgreSQL 15 primary and standby', () => {
  let primary: Cluster;
  let standby: Cluster;

  beforeAll(async () => {
    primary = await startCluster({ port: 25401, settings: { wal_level: 'replica', max_wal_senders: 5 } });
    await primary.psql('create table t(i int); insert into t values (1)');
    // A streaming standby, so the primary has a replication client and the standby replay LSNs.
    standby = await startCluster({ port: 25402, noStart: true, init: false });
    const { execa } = await import('execa');
    const bb = await execa(
      'runuser',
      ['-u', PG_OS_USER, '--', join(primary.bindir, 'pg_basebackup'), '-D', standby.pgdata, '-R', '-X', 'stream',
        '-d', `host=${primary.socketDir} port=25401 user=${PG_OS_USER} application_name=sb1`],
      { reject: false },
    );
    expect(bb.stderr).toBe('');
    await standby.start();
  });

  afterAll(async () => {
    await stopAllClusters();
  });

  it('reads a running primary: version, not in recovery, timeline 1, system identifier, streaming client', async () => {
    await expect.poll(() => primary.psql("select state from pg_stat_replication where application_name = 'sb1'"), { timeout: 30_000 }).toBe('streaming');
    const f = await gather(hostForCluster(primary));
    const sysid = await primary.psql('select system_identifier from pg_control_system()');
    expect(f).toMatchObject({
      reachable: true,
      user: 'postgres',
      pgdata_present: true,
      pgdata_version: 15,
      running: true,
      pid: primary.pid,
      version: 15,
      in_recovery: false,
      timeline: 1,
      system_identifier: sysid,
      cluster_state: 'in production',
    });
    expect(f.error).toBeUndefined();
    expect(f.server_version_num).toBeGreaterThanOrEqual(150000);
    expect(f.current_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(f.replay_paused).toBeUndefined();
    expect(f.replication_clients).toHaveLength(1);
    const c = f.replication_clients![0]!;
    expect(c).toMatchObject({ application_name: 'sb1', state: 'streaming', sync_state: 'async' });
    expect(c.lag_bytes).toBeGreaterThanOrEqual(0);
    expect(c.replay_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  });

  it('reads a running standby: in recovery, same system identifier, replay LSNs, replay paused on request', async () => {
    const host = hostForCluster(standby, { name: 'db2', role: 'standby', upstream: 'db1' });
    const f = await gather(host);
    const sysid = await primary.psql('select system_identifier from pg_control_system()');
    expect(f).toMatchObject({ running: true, in_recovery: true, replay_paused: false, system_identifier: sysid, timeline: 1, cluster_state: 'in archive recovery' });
    expect(f.receive_lsn).toMatch(/\//);
    expect(f.replay_lsn).toMatch(/\//);
    expect(f.current_lsn).toBeUndefined();
    expect(f.replication_clients).toEqual([]);
    await standby.psql('select pg_wal_replay_pause()');
    await expect.poll(async () => (await gather(host)).replay_paused, { timeout: 10_000 }).toBe(true);
    await standby.psql('select pg_wal_replay_resume()');
  });

  it('reads a stopped cluster from pg_control: not running, state, timeline and identifier still known', async () => {
    const sysid = await standby.psql('select system_identifier from pg_control_system()');
    await standby.stop({ keep: true });
    const f = await gather(hostForCluster(standby, { name: 'db2', role: 'standby' }));
    expect(f).toMatchObject({
      reachable: true,
      pgdata_present: true,
      pgdata_version: 15,
      running: false,
      version: 15,
      timeline: 1,
      system_identifier: sysid,
      cluster_state: 'shut down in recovery',
    });
    expect(f.pid).toBeUndefined();
    expect(f.in_recovery).toBeUndefined();
    expect(f.error).toBeUndefined();
  });

  it('reports a missing PGDATA without failing', async () => {
    const host = hostForCluster({ ...primary, pgdata: join(primary.dir, 'nope') });
    const f = await gather(host);
    expect(f).toMatchObject({ reachable: true, pgdata_present: false, running: false, user: 'postgres' });
    expect(f.version).toBeUndefined();
    expect(f.system_identifier).toBeUndefined();
  });

  it('records a psql failure as an error while keeping pg_control facts', async () => {
    const host = hostForCluster(primary, { superuser: 'no_such_role' });
    const f = await gather(host);
    expect(f.running).toBe(true);
    expect(f.in_recovery).toBeUndefined();
    expect(f.version).toBe(15);
    expect(f.cluster_state).toBe('in production');
    expect(f.error).toMatch(/^psql: .*no_such_role/);
  });
});
