/**
 * Barman beside PostgreSQL on one machine (backup.barman.local, backup.barman.config): what the lab's
 * --backup-tool barman builds on. The inventory refuses a local Barman that could not work (exit 2),
 * Barman is run with the lab's own barman.conf as the PostgreSQL OS user, recover writes PGDATA itself
 * instead of over SSH, and the lab writes an inventory that validates and says all of this.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { remoteArgs } from '../../src/actions/barman-recover.js';
import { barmanUser, configArgs, serverConfigFile } from '../../src/barman/runner.js';
import { PgplayError, PgplayErrors } from '../../src/core/errors.js';
import { inventoryYaml, labInventory } from '../../src/lab/inventory.js';
import { DEFAULT_BASE_PORT, PORTS_PER_LAB, type LabOptions } from '../../src/lab/options.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { Inventory } from '../../src/model/inventory.js';

const VALID = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'valid', 'inventory.yml'), 'utf8');
const PGBACKREST_BACKUP = /backup:\n(?: .*\n)+/;

function errorsOf(text: string): string[] {
  try {
    return inventoryErrors(parseYaml(text, 'inventory.yml')).map((e) => e.format());
  } catch (e) {
    if (e instanceof PgplayErrors) return e.errors.map((x) => x.format());
    throw e;
  }
}

/** The fixture with a Barman backup section; its hosts on one address when `oneMachine`. */
function barmanInventory(barman: string, oneMachine = true): string {
  let text = VALID.replace(PGBACKREST_BACKUP, `backup:\n  tool: barman\n  repoHost: bk1\n  barman: { password: { env: P }, ${barman} }\n`);
  if (oneMachine) text = text.replace(/address: 10\.0\.0\.\d+/g, 'address: 127.0.0.1').replace('role: standby, upstream: db1, pgdata: /var/lib/postgresql/15/main', 'role: standby, upstream: db1, pgdata: /var/lib/postgresql/15/db2, postgres: { port: 5433 }');
  return text;
}

const LAB: LabOptions = { dir: '/var/lib/pgplay-lab', pgVersion: 15, bindir: '/usr/lib/postgresql/15/bin', basePort: 15400, osUser: 'postgres', become: 'postgres', backupTool: 'barman' };

describe('backup.barman.local and backup.barman.config in the inventory', () => {
  test('Barman on the machine of every host, as their OS user, with its own barman.conf validates', () => {
    expect(errorsOf(barmanInventory('local: true, config: /srv/lab/barman/barman.conf'))).toEqual([]);
  });

  test('refused (exit 2): local without its own config, with rsync, with a host on another machine; a relative config path', () => {
    expect(errorsOf(barmanInventory('local: true')).join('\n')).toContain('backup.barman.local needs backup.barman.config');
    expect(errorsOf(barmanInventory('local: true, method: rsync, config: /srv/b/barman.conf')).join('\n')).toContain('method rsync copies over SSH');
    const elsewhere = errorsOf(barmanInventory('local: true, config: /srv/b/barman.conf', false)).join('\n');
    expect(elsewhere).toContain('db1 (10.0.0.11) is not on the machine of the repository host bk1 (10.0.0.20)');
    expect(errorsOf(barmanInventory('config: etc/barman.conf')).join('\n')).toContain('an absolute path');
  });
});

describe('how Barman is run', () => {
  const inv = (barman: Record<string, unknown>) => ({ cluster: 'main', backup: { tool: 'barman', barman: { password: { env: 'P' }, ...barman } } }) as unknown as Inventory;
  const repo = { name: 'bk1', address: '127.0.0.1', postgres: { osUser: 'postgres' } } as never;

  test('the machine\'s Barman: user barman, no -c, /etc/barman.d; the lab\'s: the PostgreSQL OS user, -c its config, barman.d beside it', () => {
    expect([barmanUser(inv({}), repo), configArgs(inv({})), serverConfigFile(inv({}), 'main')]).toEqual(['barman', [], '/etc/barman.d/main.conf']);
    const local = inv({ local: true, config: '/srv/lab/bk1/barman/barman.conf' });
    expect([barmanUser(local, repo), configArgs(local), serverConfigFile(local, 'lab')]).toEqual([
      'postgres',
      ['-c', '/srv/lab/bk1/barman/barman.conf'],
      '/srv/lab/bk1/barman/barman.d/lab.conf',
    ]);
  });

  test('recover: over SSH as the PostgreSQL OS user, or (local) by Barman itself; refused when Barman could not write the PGDATA as its owner', () => {
    const target = (address: string, osUser = 'postgres') => ({ name: 'db2', address, postgres: { osUser } }) as never;
    expect(remoteArgs({ host: target('10.0.0.12'), inventory: inv({}) }, { host: repo, user: 'barman' })).toEqual([
      '--remote-ssh-command',
      'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes postgres@10.0.0.12',
    ]);
    const local = inv({ local: true, config: '/srv/b/barman.conf' });
    expect(remoteArgs({ host: target('127.0.0.1'), inventory: local }, { host: repo, user: 'postgres' })).toEqual([]);
    expect(() => remoteArgs({ host: target('127.0.0.1', 'pg17'), inventory: local }, { host: repo, user: 'postgres' })).toThrow(PgplayError);
  });
});

describe('the lab with --backup-tool barman', () => {
  test('its inventory validates: backup.tool barman with the lab\'s own Barman (local, config in the lab directory), no pgBackRest keys', () => {
    const text = inventoryYaml(LAB);
    expect(errorsOf(text)).toEqual([]);
    const backup = (parse(text) as Inventory).backup!;
    expect(backup).toEqual({
      tool: 'barman',
      repoHost: 'bk1',
      repoPath: '/var/lib/pgplay-lab/bk1/repo',
      barman: {
        server: 'lab',
        method: 'postgres',
        retention: { redundancy: 2 },
        minimumRedundancy: 1,
        password: { file: '/var/lib/pgplay-lab/secrets/barman-password' },
        config: '/var/lib/pgplay-lab/bk1/barman/barman.conf',
        local: true,
      },
    });
    expect(text).toContain('# Backups use Barman on this machine as postgres');
    // Every host the lab writes is on Barman's machine: what backup.barman.local needs.
    const hosts = resolveHosts(labInventory(LAB));
    expect(new Set(Object.values(hosts).map((h) => h.address))).toEqual(new Set(['127.0.0.1']));
  });

  test('the default ports lie below Linux\'s ephemeral range (32768-60999), where an outgoing connection could hold one', () => {
    expect(DEFAULT_BASE_PORT + PORTS_PER_LAB - 1).toBeLessThan(32768);
  });
});
