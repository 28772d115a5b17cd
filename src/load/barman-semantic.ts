import type { Inventory } from '../model/inventory.js';
import type { Emit } from './semantic-errors.js';

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
  checkLocalBarman(inv, emit);
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

/**
 * backup.barman.local: Barman and every PostgreSQL server on one machine, Barman as their OS user. What
 * makes that safe is checked here: without its own config Barman would run with the machine's
 * /etc/barman.conf (barman_user barman, who cannot write a PGDATA PostgreSQL starts); rsync needs SSH; a
 * host at another address is another machine, which local commands cannot reach.
 */
function checkLocalBarman(inv: Inventory, emit: Emit): void {
  const barman = inv.backup?.barman;
  if (!barman?.local) return;
  if (barman.config === undefined) {
    emit(['backup', 'barman', 'local'], 'backup.barman.local needs backup.barman.config: a barman.conf whose barman_user is the PostgreSQL OS user', {
      expected: 'config: /path/barman.conf (barman_user = the PostgreSQL OS user, configuration_files_directory = barman.d beside it)',
      part: 'key',
    });
  }
  if (barman.method === 'rsync') {
    emit(['backup', 'barman', 'method'], 'backup.barman.method rsync copies over SSH, which backup.barman.local does without', { expected: 'method: postgres' });
  }
  const repo = inv.backup?.repoHost ? inv.hosts[inv.backup.repoHost] : undefined;
  if (!repo) return;
  for (const [name, host] of Object.entries(inv.hosts)) {
    if (host.address !== repo.address) {
      emit(['hosts', name, 'address'], `backup.barman.local: ${name} (${host.address}) is not on the machine of the repository host ${inv.backup!.repoHost} (${repo.address})`, {
        expected: `address: ${repo.address}, or backup.barman.local: false (Barman over SSH)`,
      });
    }
  }
}
