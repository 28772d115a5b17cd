/**
 * host.restoreCommand (src/load/restore-command.ts): the one place that knows each backup engine's
 * restore_command, which standby-build.yml, include/backup/repoint.yml (switchover and promote),
 * recovery-settings.yml (restore.yml) and pitr-drill.yml all write.
 */
import { describe, expect, test } from 'vitest';
import { resolveHosts } from '../../src/load/hosts.js';
import type { BackupConfig, Inventory } from '../../src/model/inventory.js';

function inventory(backup: BackupConfig | undefined, dbVars: Record<string, unknown> = {}): Inventory {
  return {
    cluster: 'main',
    postgres: { version: 15 },
    ...(backup ? { backup } : {}),
    hosts: {
      db1: { address: '10.0.0.11', role: 'primary', vars: dbVars },
      db2: { address: '10.0.0.12', role: 'standby', upstream: 'db1', vars: dbVars },
      bk1: { address: '10.0.0.20', role: 'repository' },
    },
  } as Inventory;
}
const restoreCommand = (inv: Inventory, host = 'db2') => resolveHosts(inv)[host]!.restoreCommand;
const password = { env: 'PGPLAY_BARMAN_PASSWORD' };

describe('host.restoreCommand per backup engine', () => {
  test("pgbackrest: archive-get with the host's own pgbackrest.conf and the stanza (default: the cluster)", () => {
    expect(restoreCommand(inventory({ tool: 'pgbackrest' }))).toBe('pgbackrest --stanza=main archive-get %f "%p"');
    expect(restoreCommand(inventory({ tool: 'pgbackrest', stanza: 'prod' }, { pgbackrest_config: '/etc/pgbr/db.conf' }))).toBe(
      'pgbackrest --config=/etc/pgbr/db.conf --stanza=prod archive-get %f "%p"',
    );
  });

  test("basebackup: pgplay-wal fetch from the repository's WAL archive (backup.repoPath, else its default)", () => {
    expect(restoreCommand(inventory({ tool: 'basebackup', repoPath: '/srv/backups' }))).toBe('/srv/backups/bin/pgplay-wal fetch /srv/backups/wal %f "%p"');
    expect(restoreCommand(inventory({ tool: 'basebackup' }))).toBe('/var/lib/pgplay/backups/bin/pgplay-wal fetch /var/lib/pgplay/backups/wal %f "%p"');
  });

  test("barman: barman-wal-restore to the repository host's address and the server (default: the cluster); barman get-wal with backup.barman.local", () => {
    expect(restoreCommand(inventory({ tool: 'barman', repoHost: 'bk1', barman: { password } }))).toBe('barman-wal-restore 10.0.0.20 main %f "%p"');
    expect(restoreCommand(inventory({ tool: 'barman', repoHost: 'bk1', barman: { password, server: 'pg' } }))).toBe('barman-wal-restore 10.0.0.20 pg %f "%p"');
    expect(restoreCommand(inventory({ tool: 'barman', repoHost: 'bk1', barman: { password, local: true, config: '/lab/barman.conf' } }))).toBe(
      'barman -c /lab/barman.conf get-wal main %f > "%p"',
    );
  });

  test('no backup engine: none (a streaming-only standby)', () => {
    expect(restoreCommand(inventory(undefined))).toBeUndefined();
    expect('restoreCommand' in resolveHosts(inventory(undefined)).db2!).toBe(false);
  });
});
