import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contradictedClaims } from '../../src/engine/claims.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { loadInventory } from '../../src/load/inventory.js';
import { hostLockPath } from '../../src/lock/host-lock.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { Inventory } from '../../src/model/inventory.js';
import { parseSettings, sameValue } from '../../src/postgres/settings-file.js';
import { buildInventorySchema } from '../../src/schema/inventory.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-claims-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const inventory: Inventory = {
  cluster: 'main',
  postgres: { version: 17 },
  backup: { tool: 'pgbackrest', repoHost: 'bk1', repoPath: '/var/lib/pgbackrest' },
  hosts: {
    db1: { address: '10.0.0.11', role: 'primary', pgdata: '/var/lib/postgresql/17/main' },
    bk1: { address: '10.0.0.20', role: 'repository' },
  },
};
const hosts = resolveHosts(inventory);
const running15: HostFacts = { reachable: true, pgdata_present: true, running: true, version: 15, server_version_num: 150010, bindir: { pg_ctl: true, postgres_major: 17 } };

describe('facts check the claims', () => {
  it('names the host, the claim and the fact for a version and a bindir that contradict the host', () => {
    expect(contradictedClaims(hosts.db1!, running15)).toEqual([
      'db1: the inventory says PostgreSQL 17 (postgres.version), but the server runs 15 (server_version_num 150010)',
    ]);
    expect(contradictedClaims(hosts.db1!, { ...running15, running: false, server_version_num: undefined })).toEqual([
      'db1: the inventory says PostgreSQL 17 (postgres.version), but /var/lib/postgresql/17/main holds a PostgreSQL 15 cluster (PG_VERSION)',
    ]);
    expect(contradictedClaims(hosts.db1!, { ...running15, version: 17, bindir: { pg_ctl: false } })).toEqual([
      'db1: postgres.bindir /usr/lib/postgresql/17/bin holds no pg_ctl (the PostgreSQL 17 server binaries are not there)',
    ]);
    expect(contradictedClaims(hosts.db1!, { ...running15, version: 17, bindir: { pg_ctl: true, postgres_major: 16 } })[0]).toContain(
      'holds PostgreSQL 16 binaries (pg_ctl --version), but the inventory says 17',
    );
  });

  it('has nothing to say about an unreachable host, a host without PGDATA, or facts that hold the claims', () => {
    expect(contradictedClaims(hosts.db1!, { reachable: false, pgdata_present: false, running: false })).toEqual([]);
    expect(contradictedClaims(hosts.bk1!, running15)).toEqual([]);
    expect(contradictedClaims(hosts.db1!, { ...running15, version: 17 })).toEqual([]);
  });
});

describe("the schema's defaults are the code's defaults", () => {
  it('a loaded inventory holds every default the schema documents for replication and backup', async () => {
    const file = join(dir, 'inventory.yml');
    await writeFile(
      file,
      [
        'cluster: main',
        'postgres: { version: 15 }',
        'replication: { user: replicator }',
        'backup: { tool: pgbackrest }',
        'hosts:',
        '  db1: { address: 10.0.0.11, role: primary, pgdata: /var/lib/postgresql/15/main }',
        '',
      ].join('\n'),
    );
    const { inventory: loaded } = await loadInventory(file);
    const schema = buildInventorySchema() as { properties: Record<string, { properties?: Record<string, { default?: unknown }> }> };
    for (const section of ['replication', 'backup'] as const) {
      for (const [key, def] of Object.entries(schema.properties[section]!.properties!)) {
        if (def.default !== undefined) expect((loaded[section] as unknown as Record<string, unknown>)[key], `${section}.${key}`).toEqual(def.default);
      }
    }
    expect(loaded.replication!.slots).toBe(true);
    expect(loaded.backup!.repoPath).toBe('/var/lib/pgbackrest');
    expect(loaded.vars).toEqual({});
  });
});

describe('postgresql.conf values against what the server runs with', () => {
  it('parses settings (quotes, comments, includes) with the last one winning', () => {
    const s = parseSettings("# c\nport = 5432\narchive_command = 'pgbackrest --stanza=x archive-push %p' # push\ninclude_dir = 'conf.d'\nArchive_Mode on\nport=5433\nx = 'it''s'\n");
    expect(Object.fromEntries(s)).toEqual({ port: '5433', archive_command: 'pgbackrest --stanza=x archive-push %p', archive_mode: 'on', x: "it's" });
  });

  it('compares units, booleans and enums as the server does', () => {
    const buffers = { name: 'shared_buffers', setting: '4096', unit: '8kB', vartype: 'integer', shown: '32MB' };
    expect(sameValue('32MB', buffers)).toBe(true);
    expect(sameValue('32768kB', buffers)).toBe(true);
    expect(sameValue('64MB', buffers)).toBe(false);
    expect(sameValue('on', { name: 'archive_mode', setting: 'off', unit: null, vartype: 'enum', shown: 'off' })).toBe(false);
    expect(sameValue('true', { name: 'hot_standby', setting: 'on', unit: null, vartype: 'bool', shown: 'on' })).toBe(true);
    expect(sameValue('1GB', { name: 'wal_keep_size', setting: '1024', unit: 'MB', vartype: 'integer', shown: '1GB' })).toBe(true);
  });
});

describe('where the cluster lock lives on a host', () => {
  it('beside the data directory, beside the repository, or in the host var pgplay_dir', () => {
    expect(hostLockPath(hosts.db1!, inventory)).toBe('/var/lib/postgresql/17/.pgplay/locks/main.lock');
    expect(hostLockPath(hosts.bk1!, inventory)).toBe('/var/lib/.pgplay/locks/main.lock');
    expect(hostLockPath({ ...hosts.db1!, vars: { pgplay_dir: '/srv/pgplay' } }, inventory)).toBe('/srv/pgplay/locks/main.lock');
  });
});
