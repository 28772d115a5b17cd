import { describe, expect, test } from 'vitest';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { parseYaml } from '../../src/load/yaml.js';

const check = (hosts: string[], head: string[] = []) =>
  inventoryErrors(parseYaml(['cluster: c', 'postgres: { version: 15 }', ...head, 'hosts:', ...hosts, ''].join('\n'), 'inventory.yml')).map((e) => e.format());

describe('hosts that may be one machine (validate and every run, exit 2)', () => {
  test('the same address and pgdata, or nested pgdata, is rejected at the later host', () => {
    expect(
      check([
        '  db1: { address: 10.0.0.1, role: primary, pgdata: /pg/main }',
        '  drill1: { address: 10.0.0.1, role: drill, pgdata: /pg/main/, postgres: { port: 5499 } }',
        '  db2: { address: 10.0.0.1, role: standby, upstream: db1, pgdata: /pg, postgres: { port: 5433 } }',
      ]),
    ).toEqual([
      'inventory.yml:5:53: "drill1" and "db1" have the same address (10.0.0.1) and the same pgdata (/pg/main): one host\'s playbook would destroy the other\'s data (expected a data directory of its own for each host on one machine)',
      'inventory.yml:6:67: "db2" and "db1" have the same address (10.0.0.1) and nested data directories (/pg and /pg/main): one host\'s playbook would destroy the other\'s data (expected a data directory of its own for each host on one machine)',
    ]);
  });

  test('two local-transport hosts are one machine whatever their addresses; over SSH other addresses are other machines', () => {
    const hosts = ['  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/a }', '  db2: { address: 127.0.0.2, role: standby, upstream: db1, pgdata: /pg/a }'];
    expect(check(hosts, ['connection: { transport: local }'])).toEqual([expect.stringContaining('"db2" and "db1" have the same machine (both use the local transport) and the same pgdata (/pg/a)')]);
    expect(check(hosts)).toEqual([]);
  });

  test('the same address and port is rejected; the lab shape (one address, own pgdata and port) is valid', () => {
    expect(
      check(['  db1: { address: 127.0.0.1, role: primary, pgdata: /lab/db1 }', '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /lab/db2 }'], ['connection: { transport: local }']),
    ).toEqual(['inventory.yml:6:19: "db2" and "db1" have the same address (127.0.0.1) and port (5432) (expected a port of its own for each PostgreSQL server at one address)']);
    expect(
      check(
        [
          '  db1: { address: 127.0.0.1, role: primary, pgdata: /lab/db1, postgres: { port: 54400 } }',
          '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /lab/db2, postgres: { port: 54401 } }',
          '  bk1: { address: 127.0.0.1, role: repository }',
          '  drill1: { address: 127.0.0.1, role: drill, pgdata: /lab/drill1, postgres: { port: 54402 } }',
        ],
        ['connection: { transport: local }'],
      ),
    ).toEqual([]);
  });

  test('relative paths are rejected with where they are', () => {
    expect(
      check(['  db1: { address: a, role: primary, pgdata: data/db1, postgres: { socketDir: run } }'], ['backup: { tool: pgbackrest, repoPath: repo }']),
    ).toEqual([
      expect.stringMatching(/^inventory\.yml:3:\d+: backup\.repoPath "repo" is a relative path \(expected an absolute path, e\.g\. \/repo\)$/),
      expect.stringMatching(/^inventory\.yml:5:\d+: pgdata of "db1" "data\/db1" is a relative path/),
      expect.stringMatching(/^inventory\.yml:5:\d+: postgres\.socketDir of "db1" "run" is a relative path/),
    ]);
  });
});
