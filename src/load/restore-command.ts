/**
 * `host.restoreCommand`: the restore_command that fetches WAL from the backup engine's archive on a host,
 * resolved once for every playbook that writes one (a standby built or repointed, a restore, a drill).
 *
 * - pgbackrest: pgBackRest's archive-get, with the host's own pgbackrest.conf (host.pgbackrest.command).
 * - basebackup: pgplay-wal fetch from the repository's WAL archive (templates/pgplay-wal.sh), which the host
 *   sees at backup.repoPath (the same machine or a shared mount; the wal_archive action checks it).
 * - barman: barman-wal-restore (barman-cli) from Barman on the repository host over SSH as barman; with
 *   backup.barman.local (Barman on this machine as this server's OS user) barman get-wal itself.
 *
 * Absent without a backup engine (a streaming-only standby). Written unquoted into a postgresql.conf
 * value by the recovery action, which quotes the whole; the parts come from the inventory, whose checks
 * refuse paths and names with characters that would need shell quoting.
 */
import type { Inventory } from '../model/inventory.js';
import { REPO_PATH_DEFAULTS } from './defaults.js';

export function resolveRestoreCommand(inv: Inventory, pgbackrestCommand: string): string | undefined {
  const backup = inv.backup;
  if (!backup) return undefined;
  switch (backup.tool) {
    case 'pgbackrest':
      return `${pgbackrestCommand} --stanza=${backup.stanza ?? inv.cluster} archive-get %f "%p"`;
    case 'basebackup': {
      const repo = backup.repoPath ?? REPO_PATH_DEFAULTS.basebackup;
      return `${repo}/bin/pgplay-wal fetch ${repo}/wal %f "%p"`;
    }
    case 'barman': {
      const server = backup.barman?.server ?? inv.cluster;
      // backup.barman.local without config is refused by the inventory checks (src/load/barman-semantic.ts).
      if (backup.barman?.local) return backup.barman.config ? `barman -c ${backup.barman.config} get-wal ${server} %f > "%p"` : undefined;
      const repository = backup.repoHost === undefined ? undefined : inv.hosts[backup.repoHost];
      // Without a repository host the inventory checks refuse backup.tool barman before anything runs.
      return repository ? `barman-wal-restore ${repository.address} ${server} %f "%p"` : undefined;
    }
  }
}
