/** The barman action's input (src/actions/barman.ts); recover's part is read by barman-recover.ts. */
export const BARMAN_COMMANDS = ['version', 'check', 'switch-wal', 'backup', 'list-backups', 'show-backup', 'delete', 'cron', 'create-slot', 'reset-receive-wal', 'recover'] as const;
export type BarmanCommand = (typeof BARMAN_COMMANDS)[number];

export interface BarmanInput {
  command: BarmanCommand;
  nagios?: boolean;
  except?: string[];
  backup_id?: string;
  archive_timeout?: number;
  target_time?: string;
  target_name?: string;
  target_xid?: string;
  target_lsn?: string;
  target_immediate?: boolean;
  target_action?: 'pause' | 'promote' | 'shutdown';
  standby_mode?: boolean;
  get_wal?: boolean;
  allow_primary?: boolean;
  replace?: boolean;
  replace_sysid?: string;
  /** create-slot, reset-receive-wal: the host Barman's server follows when it is not yet the inventory's primary (after a promotion or a restore). */
  primary?: string;
}

