import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { loadInventory } from '../../src/load/inventory.js';
import { resolveHosts, selectHosts } from '../../src/load/hosts.js';
import type { Inventory } from '../../src/model/inventory.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

describe('resolveHosts', () => {
  test('the DESIGN.md example: cluster-wide values, then host overrides', async () => {
    const { inventory } = await loadInventory(join(FIXTURES, 'valid', 'inventory.yml'));
    const hosts = resolveHosts(inventory);
    expect(Object.keys(hosts)).toEqual(['db1', 'db2', 'bk1', 'drill1']);
    expect(hosts.db2).toEqual({
      name: 'db2',
      address: '10.0.0.12',
      role: 'standby',
      upstream: 'db1',
      pgdata: '/var/lib/postgresql/15/main',
      postgres: {
        version: 15,
        bindir: '/usr/lib/postgresql/15/bin',
        port: 5432,
        osUser: 'postgres',
        superuser: 'postgres',
        socketDir: '/var/run/postgresql',
        settings: {},
        hba: [],
        layout: 'pgdata',
        service: 'pg_ctl',
        configDir: '/var/lib/postgresql/15/main',
      },
      connection: {
        transport: 'ssh',
        user: 'root',
        port: 22,
        identityFile: '~/.ssh/id_ed25519',
        knownHosts: '~/.ssh/known_hosts',
        become: 'postgres',
      },
      vars: {},
      pgbackrest: { config: '/etc/pgbackrest/pgbackrest.conf', configIsDefault: true, configDir: '/etc/pgbackrest', command: 'pgbackrest' },
      restoreCommand: 'pgbackrest --stanza=main archive-get %f "%p"',
    });
    expect(hosts.drill1!.postgres.port).toBe(5499);
  });

  test('defaults fill what the inventory leaves out; settings merge, host hba rules come first', () => {
    const inv: Inventory = {
      cluster: 'c',
      postgres: {
        version: 16,
        password: { env: 'PGPASS' },
        settings: { shared_buffers: '1GB', wal_level: 'replica' },
        hba: [{ type: 'host', database: 'all', user: 'all', address: '10.0.0.0/8', method: 'scram-sha-256' }],
      },
      hosts: {
        a: { address: '127.0.0.2', role: 'primary', pgdata: '/d', vars: { zone: 'x' } },
        b: {
          address: '127.0.0.3',
          role: 'drill',
          pgdata: '/d',
          postgres: { version: 13, settings: { shared_buffers: '128MB' }, hba: [{ type: 'local', database: 'all', user: 'all', method: 'trust' }] },
          connection: { transport: 'local' },
        },
      },
    };
    const hosts = resolveHosts(inv);
    expect(hosts.a!.postgres).toEqual({
      version: 16,
      bindir: '/usr/lib/postgresql/16/bin',
      port: 5432,
      osUser: 'postgres',
      superuser: 'postgres',
      socketDir: '/var/run/postgresql',
      password: { env: 'PGPASS' },
      settings: { shared_buffers: '1GB', wal_level: 'replica' },
      hba: inv.postgres.hba,
      layout: 'pgdata',
      service: 'pg_ctl',
      configDir: '/d',
    });
    expect(hosts.a!.connection).toEqual({ transport: 'ssh', user: 'root', port: 22 });
    expect(hosts.a!.vars).toEqual({ zone: 'x' });
    // Another major version gets its own bindir, not the cluster's.
    expect(hosts.b!.postgres.version).toBe(13);
    expect(hosts.b!.postgres.bindir).toBe('/usr/lib/postgresql/13/bin');
    expect(hosts.b!.postgres.settings).toEqual({ shared_buffers: '128MB', wal_level: 'replica' });
    expect(hosts.b!.postgres.hba.map((r) => r.type)).toEqual(['local', 'host']);
    expect(hosts.b!.connection.transport).toBe('local');
  });
});

describe('selectHosts', () => {
  const inv: Inventory = {
    cluster: 'c',
    postgres: { version: 15 },
    hosts: {
      db1: { address: 'a', role: 'primary', pgdata: '/d' },
      db2: { address: 'b', role: 'standby', upstream: 'db1', pgdata: '/d' },
      bk1: { address: 'c', role: 'repository' },
      db3: { address: 'd', role: 'standby', upstream: 'db1', pgdata: '/d' },
    },
  };
  const hosts = resolveHosts(inv);

  test('names, roles, all and lists, in inventory order without duplicates', () => {
    expect(selectHosts('all', hosts)).toEqual(['db1', 'db2', 'bk1', 'db3']);
    expect(selectHosts('standby', hosts)).toEqual(['db2', 'db3']);
    expect(selectHosts('bk1', hosts)).toEqual(['bk1']);
    expect(selectHosts(['db3', 'primary', 'db1'], hosts)).toEqual(['db1', 'db3']);
    expect(selectHosts('db3,bk1', hosts)).toEqual(['bk1', 'db3']);
    expect(selectHosts('drill', hosts)).toEqual([]);
  });

  test('an unknown name is an error with a suggestion', () => {
    let err: unknown;
    try {
      selectHosts(['db1', 'standbys'], hosts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PgplayError);
    expect((err as PgplayError).format()).toBe(
      'unknown host or role "standbys"; did you mean "standby"? (expected a host name (db1, db2, bk1, db3), a role (primary, standby, repository, drill) or all)',
    );
  });
});
