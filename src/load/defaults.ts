import type { Inventory } from '../model/inventory.js';

/** Where backups go when backup.repoPath is not set, per tool (the schema's description says the same). */
export const REPO_PATH_DEFAULTS = { pgbackrest: '/var/lib/pgbackrest', basebackup: '/var/lib/pgplay/backups', barman: '/var/lib/pgplay/backups' } as const;

/**
 * The inventory's documented defaults, filled in once after validation so that every reader (the
 * engine, actions, templates, playbook expressions) sees the same value the schema documents: a key
 * left out means its default, never "false because absent". Host-level defaults (port, osUser, ...)
 * are merged per host by resolveHosts.
 */
export function applyInventoryDefaults(inv: Inventory): Inventory {
  if (inv.replication) {
    inv.replication.slots ??= true;
    inv.replication.maxSlotWalKeepSize ??= '10GB';
    inv.replication.maxLag = { bytes: '64MB', time: '5m', ...inv.replication.maxLag };
    inv.replication.maxSlotRetainedWal ??= '1GB';
  }
  if (inv.backup) {
    inv.backup.fromStandby ??= false;
    inv.backup.repoPath ??= REPO_PATH_DEFAULTS[inv.backup.tool];
    inv.backup.maxAge = { full: '8d', any: '26h', ...inv.backup.maxAge };
  }
  inv.vars ??= {};
  inv.drills = { maxAge: '35d', ...inv.drills };
  inv.monitoring = { maxClockSkew: '5s', ...inv.monitoring };
  return inv;
}
