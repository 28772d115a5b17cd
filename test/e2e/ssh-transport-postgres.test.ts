/**
 * PostgreSQL over SSH, as the engine will use it: connectPostgres runs the socket bridge through
 * SshTransport.openStream as the postgres OS user, so peer authentication works with a root login.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Host } from '../../src/model/inventory.js';
import { connectPostgres } from '../../src/postgres/client.js';
import { SshTransport } from '../../src/transports/ssh.js';
import { hostForCluster, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';
import { sshHost, startSshd, type Sshd } from '../support/sshd.js';

let sshd: Sshd;
let cluster: Cluster;
let host: Host;
let transport: SshTransport;

beforeAll(async () => {
  sshd = await startSshd({ addresses: ['127.0.0.2'] });
  cluster = await startCluster({ port: 25787, auth: 'peer' });
  host = { ...hostForCluster(cluster, { name: 'db1' }), address: '127.0.0.2', connection: sshHost(sshd, 'db1', '127.0.0.2').connection };
  transport = new SshTransport(host, { resolveSecret: async () => undefined });
});

afterAll(async () => {
  await transport?.close();
  await stopAllClusters();
  await sshd?.stop();
});

test('queries run through the SSH stream bridge with peer authentication', async () => {
  const client = await connectPostgres(transport, host);
  try {
    const r = await client.query('select current_user as u, $1::int + 1 as n, $2::text as s', [41, "it's $(x)"]);
    expect(r.rows).toEqual([{ u: 'postgres', n: 42, s: "it's $(x)" }]);
    const payload = 'y'.repeat(2_000_000);
    const big = await client.query('select md5($1::text) as sum, repeat($2, 500000) as back', [payload, 'abcd']);
    expect(big.rows[0].sum).toBe(createHash('md5').update(payload).digest('hex'));
    expect(big.rows[0].back).toHaveLength(2_000_000);
  } finally {
    await client.end();
  }
  // Streams and commands share the one connection.
  const again = await connectPostgres(transport, host);
  try {
    expect((await again.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  } finally {
    await again.end();
  }
  expect((await transport.exec(['id', '-un'], { become: 'postgres' })).stdout).toBe('postgres');
  expect(transport.connectionsOpened).toBe(1);
  expect(sshd.logs().match(/Accepted publickey for root/g)).toHaveLength(1);
});
