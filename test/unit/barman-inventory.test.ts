/** backup.tool barman in the inventory: its options validated, and refused where they cannot take effect (exit 2). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors } from '../../src/core/errors.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { parseYaml } from '../../src/load/yaml.js';

const VALID = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'valid', 'inventory.yml'), 'utf8');
const PGBACKREST_BACKUP = /backup:\n(?: .*\n)+/;

function errorsOf(backup: string, cluster = 'main'): string[] {
  const text = VALID.replace(PGBACKREST_BACKUP, `backup:\n${backup}\n`).replace(/^cluster: main/m, `cluster: ${cluster}`);
  try {
    return inventoryErrors(parseYaml(text, 'inventory.yml')).map((e) => e.format());
  } catch (e) {
    if (e instanceof PgplayErrors) return e.errors.map((x) => x.format());
    throw e;
  }
}

describe('backup.tool barman', () => {
  test('a DBA\'s Barman inventory validates', () => {
    expect(
      errorsOf('  tool: barman\n  repoHost: bk1\n  barman: { method: rsync, retention: { recoveryWindowDays: 7 }, minimumRedundancy: 2, lastBackupMaximumAgeDays: 1, password: { env: PGPLAY_BARMAN_PASSWORD } }'),
    ).toEqual([]);
  });

  test('without a repository host, without the roles\' password, with an unknown method or two retention policies', () => {
    expect(errorsOf('  tool: barman\n  barman: { password: { env: P } }').join('\n')).toContain('backup.tool barman needs backup.repoHost');
    expect(errorsOf('  tool: barman\n  repoHost: bk1\n  barman: {}').join('\n')).toContain('missing required key "password"');
    expect(errorsOf('  tool: barman\n  repoHost: bk1').join('\n')).toContain('backup.tool barman needs backup.barman');
    expect(errorsOf('  tool: barman\n  repoHost: bk1\n  barman: { method: tar, password: { env: P } }').join('\n')).toContain('invalid value "tar" for "method" (expected one of postgres, rsync)');
    expect(errorsOf('  tool: barman\n  repoHost: bk1\n  barman: { retention: { redundancy: 2, recoveryWindowDays: 7 }, password: { env: P } }').join('\n')).toContain(
      '"retention" must NOT have more than 1 properties',
    );
  });

  test('Barman on a database host, barman options with another tool, a cluster name that cannot name the slot', () => {
    expect(errorsOf('  tool: barman\n  repoHost: db1\n  barman: { password: { env: P } }').join('\n')).toContain('Barman runs on a repository host');
    expect(errorsOf('  tool: pgbackrest\n  barman: { password: { env: P } }').join('\n')).toContain('backup.barman cannot take effect with backup.tool pgbackrest');
    expect(errorsOf('  tool: barman\n  repoHost: bk1\n  barman: { password: { env: P } }', 'main-eu').join('\n')).toContain('cannot be the Barman server\'s name');
    expect(errorsOf('  tool: barman\n  repoHost: bk1\n  barman: { server: main_eu, password: { env: P } }', 'main-eu')).toEqual([]);
  });
});
