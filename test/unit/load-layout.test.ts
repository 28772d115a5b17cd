/**
 * Distribution layouts in the inventory: `postgres.layout: debian` (with `postgres.cluster`) and the
 * default `pgdata`, cluster-wide and per host, resolved into each host's PGDATA and config directory;
 * and the inventory errors that keep a layout key from being ignored or a drill's PGDATA from being guessed.
 */
import { basename } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors, type PgplayError } from '../../src/core/errors.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { Inventory } from '../../src/model/inventory.js';

function shown(errors: PgplayError[]): string[] {
  return errors.map((e) => (e.position ? e.format().replace(e.position.file, basename(e.position.file)) : e.format()));
}

function check(text: string): string[] {
  try {
    return shown(inventoryErrors(parseYaml(text, 'inventory.yml')));
  } catch (e) {
    if (e instanceof PgplayErrors) return shown(e.errors);
    throw e;
  }
}

const inventory = (postgres: Inventory['postgres'], hosts: Inventory['hosts']): Inventory => ({ cluster: 'c', postgres, hosts });

describe('layout resolution', () => {
  test('debian: PGDATA, config directory and log follow version and cluster; pgdata is optional for primary and standby', () => {
    const hosts = resolveHosts(
      inventory(
        { version: 15, layout: 'debian' },
        {
          db1: { address: '10.0.0.1', role: 'primary' },
          db2: { address: '10.0.0.2', role: 'standby', upstream: 'db1', postgres: { cluster: 'replica' } },
          db3: { address: '10.0.0.3', role: 'standby', upstream: 'db1', postgres: { version: 16 } },
          bk1: { address: '10.0.0.9', role: 'repository' },
        },
      ),
    );
    expect(hosts.db1!.pgdata).toBe('/var/lib/postgresql/15/main');
    expect(hosts.db1!.postgres).toMatchObject({
      layout: 'debian',
      cluster: 'main',
      configDir: '/etc/postgresql/15/main',
      logFile: '/var/log/postgresql/postgresql-15-main.log',
      bindir: '/usr/lib/postgresql/15/bin',
      socketDir: '/var/run/postgresql',
    });
    expect(hosts.db2!.pgdata).toBe('/var/lib/postgresql/15/replica');
    expect(hosts.db2!.postgres.configDir).toBe('/etc/postgresql/15/replica');
    expect(hosts.db3!.pgdata).toBe('/var/lib/postgresql/16/main');
    expect(hosts.db3!.postgres).toMatchObject({ configDir: '/etc/postgresql/16/main', bindir: '/usr/lib/postgresql/16/bin' });
    // A repository host has no cluster, so no cluster files either.
    expect(hosts.bk1!.pgdata).toBeUndefined();
    expect(hosts.bk1!.postgres).toMatchObject({ layout: 'debian', cluster: 'main' });
    expect(hosts.bk1!.postgres.configDir).toBeUndefined();
  });

  test('debian with an explicit pgdata keeps it; the config stays in /etc/postgresql', () => {
    const hosts = resolveHosts(
      inventory({ version: 15, layout: 'debian', cluster: 'prod' }, { db1: { address: '10.0.0.1', role: 'primary', pgdata: '/srv/pg/prod' } }),
    );
    expect(hosts.db1!.pgdata).toBe('/srv/pg/prod');
    expect(hosts.db1!.postgres.configDir).toBe('/etc/postgresql/15/prod');
  });

  test("debian: a drill host's copy keeps its configuration in its PGDATA (no Debian cluster describes it)", () => {
    const hosts = resolveHosts(
      inventory(
        { version: 15, layout: 'debian' },
        { db1: { address: '10.0.0.1', role: 'primary' }, drill1: { address: '10.0.0.3', role: 'drill', pgdata: '/var/lib/postgresql/15/drill' } },
      ),
    );
    expect(hosts.drill1!.postgres.configDir).toBe('/var/lib/postgresql/15/drill');
    expect(hosts.db1!.postgres.configDir).toBe('/etc/postgresql/15/main');
  });

  test('pgdata (the default): the config directory is PGDATA; a host may override the cluster-wide layout', () => {
    const hosts = resolveHosts(
      inventory(
        { version: 15 },
        {
          db1: { address: '10.0.0.1', role: 'primary', pgdata: '/var/lib/pgsql/15/data' },
          db2: { address: '10.0.0.2', role: 'standby', upstream: 'db1', postgres: { layout: 'debian' } },
          bk1: { address: '10.0.0.9', role: 'repository' },
        },
      ),
    );
    expect(hosts.db1!.postgres).toMatchObject({ layout: 'pgdata', configDir: '/var/lib/pgsql/15/data' });
    expect(hosts.db1!.postgres.cluster).toBeUndefined();
    expect(hosts.db1!.postgres.logFile).toBeUndefined();
    expect(hosts.db2!.pgdata).toBe('/var/lib/postgresql/15/main');
    expect(hosts.db2!.postgres).toMatchObject({ layout: 'debian', configDir: '/etc/postgresql/15/main' });
    expect(hosts.bk1!.postgres.layout).toBe('pgdata');
    expect(hosts.bk1!.postgres.configDir).toBeUndefined();
  });

  test('a debian host may opt out per host', () => {
    const hosts = resolveHosts(
      inventory({ version: 15, layout: 'debian' }, { db1: { address: '10.0.0.1', role: 'primary', pgdata: '/d', postgres: { layout: 'pgdata' } } }),
    );
    expect(hosts.db1!.postgres).toMatchObject({ layout: 'pgdata', configDir: '/d' });
  });
});

describe('layout keys in the inventory', () => {
  const base = (postgres: string, hosts: string[]) =>
    ['cluster: main', 'postgres:', ...postgres.split('\n').map((l) => `  ${l}`), 'hosts:', ...hosts.map((h) => `  ${h}`), ''].join('\n');

  test('debian without pgdata for primary and standby is valid', () => {
    expect(
      check(base('version: 15\nlayout: debian', ['db1: { address: 10.0.0.1, role: primary }', 'db2: { address: 10.0.0.2, role: standby, upstream: db1 }'])),
    ).toEqual([]);
  });

  test('the pgdata layout still needs pgdata', () => {
    expect(check(base('version: 15', ['db1: { address: 10.0.0.1, role: primary }']))).toEqual([
      'inventory.yml:5:8: primary "db1" has no pgdata (expected pgdata: the data directory of this host)',
    ]);
  });

  test("a drill's pgdata is never guessed, even with layout debian", () => {
    const errors = check(
      base('version: 15\nlayout: debian', ['db1: { address: 10.0.0.1, role: primary }', 'drill1: { address: 10.0.0.3, role: drill }']),
    );
    expect(errors).toEqual([
      'inventory.yml:7:11: drill "drill1" has no pgdata (expected pgdata: the data directory of this host)\n' +
        "  hint: a drill's pgdata is never defaulted to the package's cluster: the drill replaces it with a restored copy",
    ]);
  });

  test('an unknown layout and a bad cluster name are schema errors', () => {
    expect(check(base('version: 15\nlayout: rhel', ['db1: { address: 10.0.0.1, role: primary, pgdata: /d }']))).toEqual([
      expect.stringMatching(/^inventory\.yml:4:11: .*debian.*pgdata/),
    ]);
    expect(check(base('version: 15\nlayout: debian\ncluster: "a/b"', ['db1: { address: 10.0.0.1, role: primary }']))).toEqual([
      expect.stringMatching(/^inventory\.yml:5:12: .*a Debian cluster name/),
    ]);
  });

  test('postgres.cluster where no host uses layout debian is an error, not ignored', () => {
    expect(check(base('version: 15\ncluster: prod', ['db1: { address: 10.0.0.1, role: primary, pgdata: /d }']))).toEqual([
      'inventory.yml:4:3: no host takes this Debian cluster name: none uses layout debian without its own cluster (expected postgres.cluster only with layout: debian)',
    ]);
    expect(
      check(base('version: 15', ['db1: { address: 10.0.0.1, role: primary, pgdata: /d, postgres: { cluster: prod } }'])),
    ).toEqual([
      'inventory.yml:5:68: "db1" uses layout pgdata, which has no Debian cluster name (expected postgres.cluster only with layout: debian)',
    ]);
  });
});
