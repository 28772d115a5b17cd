/**
 * connectPostgres over SSH: the bridge runs on the "remote" host (a loopback address of the test
 * sshd) as postgres via runuser, so peer authentication works there exactly as it does locally;
 * and the facts script runs over the same connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshTransport } from '../../src/transports/ssh.js';
import { connectPostgres } from '../../src/postgres/client.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { PgplayError } from '../../src/core/errors.js';
import type { Host } from '../../src/model/inventory.js';
import { sshHost, startSshd, type Sshd } from '../support/sshd.js';
import { PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

let sshd: Sshd;
let cluster: Cluster;
let host: Host;
let transport: SshTransport;

beforeAll(async () => {
  cluster = await startCluster({ port: 25461, auth: 'peer' });
  sshd = await startSshd({ addresses: ['127.0.0.8'] });
  host = {
    ...sshHost(sshd, 'db1', '127.0.0.8'),
    pgdata: cluster.pgdata,
  };
  host.postgres = { ...host.postgres, bindir: cluster.bindir, port: cluster.port, socketDir: cluster.socketDir };
  transport = new SshTransport(host, { resolveSecret: async () => undefined });
  await transport.connect();
});

afterAll(async () => {
  await transport?.close();
  await sshd?.stop();
  await stopAllClusters();
});

describe('connectPostgres over SSH', () => {
  it('logs in as root over SSH, becomes postgres for the socket, and peer auth lets it in', async () => {
    const client = await connectPostgres(transport, host);
    try {
      const r = await client.query("select current_user as u, $1::text || repeat('z', 100000) as s", ['a']);
      expect(r.rows[0].u).toBe('postgres');
      expect(r.rows[0].s).toHaveLength(100_001);
      const via = await client.query('select client_addr is null as unix from pg_stat_activity where pid = pg_backend_pid()');
      expect(via.rows[0].unix).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('is refused by peer auth when the bridge runs as root on the remote side', async () => {
    const err = await connectPostgres(transport, host, { become: 'root' }).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.message).toContain('Peer authentication failed for user "postgres"');
  });

  it('reads the facts over the same SSH connection', async () => {
    const r = await transport.exec(factsArgv(host), { become: PG_OS_USER });
    const f = parseFacts(r.stdout);
    expect(f).toMatchObject({ reachable: true, user: 'postgres', running: true, pid: cluster.pid, version: 15, in_recovery: false });
    expect(f.error).toBeUndefined();
  });
});
