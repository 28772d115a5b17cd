import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors, type PgplayError } from '../../src/core/errors.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { loadInventory } from '../../src/load/inventory.js';
import { parseYaml } from '../../src/load/yaml.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const VALID = readFileSync(join(FIXTURES, 'valid', 'inventory.yml'), 'utf8');

/** Errors as a user reads them, with the directory stripped so expectations stay short. */
function shown(errors: PgplayError[]): string[] {
  return errors.map((e) => {
    const text = e.format();
    return e.position ? text.replace(e.position.file, basename(e.position.file)) : text;
  });
}

function check(text: string): string[] {
  try {
    return shown(inventoryErrors(parseYaml(text, 'inventory.yml')));
  } catch (e) {
    if (e instanceof PgplayErrors) return shown(e.errors);
    throw e;
  }
}

/** The DESIGN.md example with one edit: `from` must occur exactly once. */
function edit(from: string, to: string): string {
  expect(VALID.split(from).length, `fixture must contain ${from} once`).toBe(2);
  return VALID.replace(from, to);
}

describe('the DESIGN.md example inventory', () => {
  test('validates with zero errors and loads typed data', async () => {
    const { inventory, doc } = await loadInventory(join(FIXTURES, 'valid', 'inventory.yml'));
    expect(inventory.cluster).toBe('main');
    expect(inventory.postgres.version).toBe(15);
    expect(inventory.replication?.password).toEqual({ env: 'PGPLAY_REPLICATION_PASSWORD' });
    expect(Object.keys(inventory.hosts)).toEqual(['db1', 'db2', 'bk1', 'drill1']);
    expect(doc.position(['hosts', 'drill1', 'postgres', 'port'])).toMatchObject({ line: 34, col: 95 });
  });
});

describe('one defect at a time: exact position and message', () => {
  const cases: Array<[string, string, string, string[]]> = [
    [
      'major version out of range',
      '  version: 15 ',
      '  version: 18 ',
      ['inventory.yml:4:12: invalid value 18 for "version" (expected an integer from 11 to 17)'],
    ],
    [
      'wrong type',
      '  slots: true',
      '  slots: sometimes',
      ['inventory.yml:22:10: invalid value "sometimes" for "slots" (expected true or false)'],
    ],
    [
      'bad enum',
      '  tool: pgbackrest ',
      '  tool: bacula ',
      ['inventory.yml:24:9: invalid value "bacula" for "tool" (expected one of pgbackrest, basebackup, barman)'],
    ],
    [
      'plain-text password instead of {env}',
      'password: { env: PGPLAY_REPLICATION_PASSWORD }',
      'password: s3cret-value',
      [
        'inventory.yml:21:13: "password" must not be written in plain text (expected a secret reference {env: NAME} or {file: PATH})',
      ],
    ],
    [
      'misspelt secret reference',
      '{ env: PGPLAY_REPLICATION_PASSWORD }',
      '{ evn: PGPLAY_REPLICATION_PASSWORD }',
      ['inventory.yml:21:13: invalid value for "password" (expected a secret reference {env: NAME} or {file: PATH})'],
    ],
    [
      'bad duration',
      '  port: 22\n',
      '  port: 22\n  connectTimeout: 10 minutes\n',
      [
        'inventory.yml:16:19: invalid value "10 minutes" for "connectTimeout" (expected a number of seconds or a duration such as 500ms, 30s, 5m, 2h, 1h30m)',
      ],
    ],
    [
      'missing required key',
      'cluster: main                      # required; also the default pgBackRest stanza\n',
      '',
      ['inventory.yml:2:1: missing required key "cluster"'],
    ],
    [
      'unknown key with did-you-mean',
      '  knownHosts: ~/.ssh',
      '  knowHosts: ~/.ssh',
      [
        'inventory.yml:17:3: unknown key "knowHosts"; did you mean "knownHosts"? (expected one of transport, user, port, identityFile, passphrase, agent, knownHosts, hostKeyChecking, become, becomeMethod, connectTimeout, keepaliveInterval, jump)',
      ],
    ],
    [
      'bad host role, with the host named',
      'role: repository',
      'role: backup',
      ['inventory.yml:33:36, host bk1: invalid value "backup" for "role" (expected one of primary, standby, repository, drill)'],
    ],
    [
      'two primaries',
      'role: standby, upstream: db1,',
      'role: primary,',
      [
        'inventory.yml:32:36: "db2" is a second primary ("db1" is already primary) (expected exactly one host with role: primary)',
      ],
    ],
    [
      'no primary',
      'role: primary,',
      'role: drill,',
      [
        'inventory.yml:32:55: upstream "db1" of "db2" is a drill, not a primary or standby',
        'inventory.yml:30:1: no host has role primary (expected exactly one host with role: primary)',
      ].sort(byPosition),
    ],
    [
      'unknown upstream',
      'upstream: db1',
      'upstream: db7',
      [
        'inventory.yml:32:55: upstream "db7" of "db2" is not a host of this inventory; did you mean "db1"? (expected a host name (db1, db2, bk1, drill1))',
      ],
    ],
    [
      'standby that is its own upstream',
      'upstream: db1',
      'upstream: db2',
      ['inventory.yml:32:55: standby "db2" cannot be its own upstream (expected another host: the primary or a standby)'],
    ],
    [
      'standby without upstream',
      'role: standby, upstream: db1,',
      'role: standby,',
      ['inventory.yml:32:8: standby "db2" has no upstream (expected upstream: the host it streams from (db1 or another standby))'],
    ],
    [
      'primary without pgdata',
      'role: primary, pgdata: /var/lib/postgresql/15/main }',
      'role: primary }',
      ['inventory.yml:31:8: primary "db1" has no pgdata (expected pgdata: the data directory of this host)'],
    ],
    [
      'unknown backup repoHost',
      'repoHost: bk1 ',
      'repoHost: bk9 ',
      [
        'inventory.yml:26:13: repoHost "bk9" is not a host of this inventory; did you mean "bk1"? (expected a host name (db1, db2, bk1, drill1))',
      ],
    ],
    [
      'a host name that cannot be used in host patterns',
      '  bk1: {',
      '  "bk 1": {',
      [
        'inventory.yml:33:3, host bk 1: invalid name "bk 1" (expected a host name made of letters, digits, "_", "." and "-")',
      ],
    ],
    [
      'a host named like a role',
      '  bk1: {',
      '  repository: {',
      [
        'inventory.yml:26:13: repoHost "bk1" is not a host of this inventory (expected a host name (db1, db2, repository, drill1))',
        'inventory.yml:33:3: "repository" cannot be a host name: host patterns use it for a role (expected a name that is not all, primary, standby, repository or drill)',
      ],
    ],
  ];

  test.each(cases)('%s', (_name, from, to, expected) => {
    expect(check(edit(from, to))).toEqual(expected);
  });
});

function byPosition(a: string, b: string): number {
  const pos = (s: string) => s.split(':').slice(1, 3).map(Number) as [number, number];
  const [la, ca] = pos(a);
  const [lb, cb] = pos(b);
  return la - lb || ca - cb;
}

describe('fixtures with many defects report all of them, sorted by position', () => {
  test('shape errors (schema)', async () => {
    const err = await loadInventory(join(FIXTURES, 'invalid', 'inventory-shape.yml')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgplayErrors);
    const errors = (err as PgplayErrors).errors;
    expect(errors.every((e) => e.code === 'SCHEMA')).toBe(true);
    expect((err as PgplayErrors).exitCode).toBe(2);
    expect(shown(errors)).toEqual([
      'inventory-shape.yml:3:12: invalid value 18 for "version" (expected an integer from 11 to 17)',
      'inventory-shape.yml:4:9: invalid value "5432x" for "port" (expected an integer from 1 to 65535)',
      'inventory-shape.yml:6:19: invalid value "soon" for "connectTimeout" (expected a number of seconds or a duration such as 500ms, 30s, 5m, 2h, 1h30m)',
      'inventory-shape.yml:9:13: "password" must not be written in plain text (expected a secret reference {env: NAME} or {file: PATH})',
      'inventory-shape.yml:12:17: invalid value "zip" for "compressType" (expected one of none, bz2, gz, lz4, zst)',
      'inventory-shape.yml:13:22: invalid value 0 for "full" (expected an integer >= 1)',
      'inventory-shape.yml:15:60, host db1: unknown key "conection"; did you mean "connection"? (expected one of address, role, upstream, pgdata, connection, postgres, vars)',
      'inventory-shape.yml:16:8, host db2: missing required key "address"',
      'inventory-shape.yml:17:36, host bk1: invalid value "backup" for "role" (expected one of primary, standby, repository, drill)',
    ]);
    // The plain-text secret must not be echoed back anywhere.
    expect((err as PgplayErrors).message).not.toContain('hunter2');
  });

  test('topology errors (semantic)', async () => {
    const err = await loadInventory(join(FIXTURES, 'invalid', 'inventory-topology.yml')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgplayErrors);
    const errors = (err as PgplayErrors).errors;
    expect(errors.every((e) => e.code === 'SEMANTIC')).toBe(true);
    const hosts = '(expected a host name (db1, db2, db3, db4, db5, db6, bk1))';
    expect(shown(errors)).toEqual([
      `inventory-topology.yml:3:39: repoHost "bk2" is not a host of this inventory; did you mean "bk1"? ${hosts}`,
      'inventory-topology.yml:6:36: "db2" is a second primary ("db1" is already primary) (expected exactly one host with role: primary)',
      `inventory-topology.yml:7:55: upstream "db9" of "db3" is not a host of this inventory; did you mean "db1"? ${hosts}`,
      'inventory-topology.yml:8:55: upstream cycle: db4 -> db5 -> db4 (expected a chain of upstreams that ends at the primary)',
      'inventory-topology.yml:10:8: standby "db6" has no pgdata (expected pgdata: the data directory of this host)',
      'inventory-topology.yml:10:55: upstream "bk1" of "db6" is a repository, not a primary or standby',
      `inventory-topology.yml:11:68: jump host "bastion" is not a host of this inventory ${hosts}\n  hint: to jump through a machine outside the inventory, write user@address`,
    ]);
  });

  test('a longer cycle is reported once, from its first host', () => {
    const text = [
      'cluster: c',
      'postgres: { version: 16 }',
      'hosts:',
      '  p: { address: a, role: primary, pgdata: /d }',
      '  s3: { address: b, role: standby, upstream: s1, pgdata: /d }',
      '  s1: { address: c, role: standby, upstream: s2, pgdata: /d }',
      '  s2: { address: d, role: standby, upstream: s3, pgdata: /d }',
      '  s4: { address: e, role: standby, upstream: s1, pgdata: /d }',
      '',
    ].join('\n');
    expect(check(text)).toEqual([
      'inventory.yml:5:46: upstream cycle: s3 -> s1 -> s2 -> s3 (expected a chain of upstreams that ends at the primary)',
    ]);
  });

  test('jump hosts given as user@address or inventory names are accepted', () => {
    const text = edit('  become: postgres ', '  jump: root@bastion.example.com\n  become: postgres ').replace(
      "role: repository }",
      'role: repository, connection: { jump: db1 } }',
    );
    expect(check(text)).toEqual([]);
  });
});
