import type { Inventory } from '../model/inventory.js';
import type { DocPath } from './yaml.js';

type Emit = (path: DocPath, message: string, extra?: { expected?: string; hint?: string; part?: 'key' | 'value' }) => void;

/**
 * backup.tool barman: Barman runs on the repository host (it connects to the primary, pulls backups and
 * receives WAL there), and its options are only read with that tool: a key that cannot take effect is
 * an error, not silently ignored.
 */
export function checkBarmanInventory(inv: Inventory, emit: Emit): void {
  const backup = inv.backup;
  if (!backup) return;
  if (backup.tool !== 'barman') {
    if (backup.barman !== undefined) {
      emit(['backup', 'barman'], `backup.barman cannot take effect with backup.tool ${backup.tool}`, { expected: 'tool: barman, or no barman: key', part: 'key' });
    }
    return;
  }
  if (backup.barman === undefined) {
    emit(['backup'], 'backup.tool barman needs backup.barman with at least the password of the barman roles', {
      expected: 'barman: { password: { env: PGPLAY_BARMAN_PASSWORD } } (method, retention, minimumRedundancy, lastBackupMaximumAgeDays optional)',
    });
  }
  // It names the replication slot barman_<server> too: PostgreSQL allows only a-z, 0-9 and _ there.
  if (backup.barman?.server === undefined && !/^[a-z0-9_]+$/.test(inv.cluster)) {
    emit(['cluster'], `the cluster name "${inv.cluster}" cannot be the Barman server's name (it names the replication slot barman_${inv.cluster})`, {
      expected: 'backup.barman.server: lowercase letters, digits and _',
    });
  }
  const repoHost = backup.repoHost;
  if (repoHost === undefined) {
    emit(['backup', 'tool'], 'backup.tool barman needs backup.repoHost: the host where Barman runs and keeps the backups', {
      expected: 'backup.repoHost: a host with role repository',
    });
  } else if (inv.hosts[repoHost] && inv.hosts[repoHost]!.role !== 'repository') {
    emit(['backup', 'repoHost'], `backup.repoHost "${repoHost}" has role ${inv.hosts[repoHost]!.role}: Barman runs on a repository host, never on a database host`, {
      expected: 'a host with role repository',
    });
  }
}
