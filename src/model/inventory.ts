/** The topology as the user writes it (inventory.yml) and as the engine uses it (resolved hosts). */

export type SecretRef = { env: string } | { file: string };

export type Role = 'primary' | 'standby' | 'repository' | 'drill';
export const ROLES: readonly Role[] = ['primary', 'standby', 'repository', 'drill'];

export interface HbaRule {
  type: 'local' | 'host' | 'hostssl' | 'hostnossl';
  database: string;
  user: string;
  address?: string;
  method: string;
}

/** Where a distribution keeps a cluster's files: Debian's /etc/postgresql tree, or everything in PGDATA. */
export type Layout = 'debian' | 'pgdata';
export const LAYOUTS: readonly Layout[] = ['debian', 'pgdata'];

/** What starts, stops, reloads and promotes a host's server (src/postgres/service.ts). */
export type ServiceManager = 'pg_ctl' | 'pg_ctlcluster' | 'systemd';
export const SERVICE_MANAGERS: readonly ServiceManager[] = ['pg_ctl', 'pg_ctlcluster', 'systemd'];

export interface PostgresConfig {
  version: number;
  layout?: Layout;
  /** The Debian cluster name (pg_createcluster's); only with layout debian. */
  cluster?: string;
  /** Default: pg_ctlcluster with layout debian (a drill host: pg_ctl), else pg_ctl. */
  service?: ServiceManager;
  /** systemd unit; {{version}}, {{cluster}} and {{host}} are replaced. */
  serviceUnit?: string;
  bindir?: string;
  port?: number;
  osUser?: string;
  superuser?: string;
  /** Optional password for the superuser when peer authentication is not available. */
  password?: SecretRef;
  socketDir?: string;
  settings?: Record<string, string | number | boolean>;
  hba?: HbaRule[];
}

export interface ConnectionConfig {
  transport?: 'ssh' | 'local';
  user?: string;
  port?: number;
  identityFile?: string;
  passphrase?: SecretRef;
  /** ssh-agent socket; true uses SSH_AUTH_SOCK. */
  agent?: boolean | string;
  /** Path of the known_hosts file, or "accept-new" (default file, new keys are added). */
  knownHosts?: string;
  hostKeyChecking?: 'strict' | 'accept-new';
  become?: string;
  becomeMethod?: 'auto' | 'sudo' | 'runuser';
  connectTimeout?: string | number;
  keepaliveInterval?: string | number;
  /** ProxyJump: an inventory host name or [user@]address[:port]. */
  jump?: string;
}

export interface ReplicationConfig {
  user: string;
  password?: SecretRef;
  slots?: boolean;
  /** max_slot_wal_keep_size on 13+ (default 10GB): a lost standby's slot cannot fill the disk. */
  maxSlotWalKeepSize?: string;
  /** pgplay status thresholds (defaults 64MB, 5m; src/status). */
  maxLag?: { bytes?: string; time?: string | number };
  maxSlotRetainedWal?: string;
}

/** backup.tool barman: the Barman server pgplay configures on backup.repoHost (src/barman/). */
export interface BarmanConfig {
  /** postgres: pg_basebackup and pg_receivewal through a slot; rsync: over SSH as the PostgreSQL OS user. */
  method?: 'postgres' | 'rsync';
  /** The Barman server name (default: the cluster name). */
  server?: string;
  /** retention_policy: REDUNDANCY n or RECOVERY WINDOW OF n DAYS. */
  retention?: { redundancy?: number; recoveryWindowDays?: number };
  minimumRedundancy?: number;
  /** last_backup_maximum_age in days. */
  lastBackupMaximumAgeDays?: number;
  /** Password of the roles barman and streaming_barman on the primary. */
  password: SecretRef;
  /** The barman.conf Barman runs with (barman -c); the server's config goes into barman.d beside it. */
  config?: string;
  /** Barman on the database hosts' machine as their PostgreSQL OS user: no SSH (a one-machine lab). */
  local?: boolean;
}

export interface BackupConfig {
  tool: 'pgbackrest' | 'basebackup' | 'barman';
  barman?: BarmanConfig;
  stanza?: string;
  repoHost?: string;
  repoPath?: string;
  retention?: { full?: number; diff?: number };
  fromStandby?: boolean;
  processMax?: number;
  compressType?: 'none' | 'bz2' | 'gz' | 'lz4' | 'zst';
  cipherPass?: SecretRef;
  /** Extra pgbackrest.conf options for the [global] section. */
  options?: Record<string, string | number | boolean>;
  /** pgplay status: newest backup per type older than this is critical (defaults full 8d, any 26h). */
  maxAge?: { full?: string | number; diff?: string | number; incr?: string | number; any?: string | number };
  /** pgplay status: the oldest full backup must be at least this old. */
  pitrWindow?: string | number;
}

export interface HostEntry {
  address: string;
  role: Role;
  upstream?: string;
  pgdata?: string;
  connection?: ConnectionConfig;
  postgres?: Partial<PostgresConfig>;
  vars?: Record<string, unknown>;
}

export interface Inventory {
  cluster: string;
  postgres: PostgresConfig;
  connection?: ConnectionConfig;
  replication?: ReplicationConfig;
  backup?: BackupConfig;
  hosts: Record<string, HostEntry>;
  vars?: Record<string, unknown>;
  /** pgplay status: the last drill must have passed within maxAge (default 35d). */
  drills?: {
    maxAge?: string | number;
    /** Percent (default 25): RTO growth over the previous passed drill flagged as a slowdown. */
    rtoRegression?: number;
    /** Recovery time and recovery point objectives: each drill's report says met or missed. */
    rto?: string | number;
    rpo?: string | number;
  };
  /** pgplay status: clock skew threshold (default 5s). */
  monitoring?: { maxClockSkew?: string | number };
}

/** A host with cluster-wide defaults merged in; what actions and templates see as `host`. */
export interface Host {
  name: string;
  address: string;
  role: Role;
  upstream?: string;
  pgdata?: string;
  postgres: Required<Pick<PostgresConfig, 'version' | 'bindir' | 'port' | 'osUser' | 'superuser' | 'socketDir'>> &
    Pick<PostgresConfig, 'password'> & { settings: Record<string, string | number | boolean>; hba: HbaRule[] } & ResolvedLayout;
  connection: ConnectionConfig & { transport: 'ssh' | 'local' };
  vars: Record<string, unknown>;
  /** Where its pgbackrest.conf is (src/postgres/pgbackrest-config.ts); set by resolveHosts, absent on hosts built by hand. */
  pgbackrest?: ResolvedPgbackrest;
  /** The backup engine's restore_command on this host (src/load/restore-command.ts); absent without backup.tool, and on hosts built by hand. */
  restoreCommand?: string;
}

/**
 * What a host's layout resolves to (src/postgres/layout.ts). Set by resolveHosts on every host; optional
 * so that hosts built by hand (tests, the lab) keep working, and absent means the pgdata layout.
 */
export interface ResolvedLayout {
  layout?: Layout;
  /** The Debian cluster name (debian layout only). */
  cluster?: string;
  /** The directory of postgresql.conf and pg_hba.conf: /etc/postgresql/<version>/<cluster>, or PGDATA. */
  configDir?: string;
  /** The server log pg_ctlcluster writes (debian layout only). */
  logFile?: string;
  /** What starts and stops the server; absent means pg_ctl. */
  service?: ServiceManager;
  /** The systemd unit (service systemd only), placeholders replaced. */
  serviceUnit?: string;
}

/** `host.pgbackrest` in templates and expressions. */
export interface ResolvedPgbackrest {
  /** The pgbackrest.conf pgplay writes and every pgBackRest command on this host reads. */
  config: string;
  /** config is pgBackRest's own default: no `--config` is needed, and the package's file is moved aside. */
  configIsDefault: boolean;
  /** The directory of config. */
  configDir: string;
  /** `pgbackrest`, or `pgbackrest --config=<config>`: the start of archive_command and restore_command. */
  command: string;
}
