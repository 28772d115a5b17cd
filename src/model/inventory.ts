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

export interface PostgresConfig {
  version: number;
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
}

export interface BackupConfig {
  tool: 'pgbackrest' | 'basebackup';
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
}

/** A host with cluster-wide defaults merged in; what actions and templates see as `host`. */
export interface Host {
  name: string;
  address: string;
  role: Role;
  upstream?: string;
  pgdata?: string;
  postgres: Required<Pick<PostgresConfig, 'version' | 'bindir' | 'port' | 'osUser' | 'superuser' | 'socketDir'>> &
    Pick<PostgresConfig, 'password'> & { settings: Record<string, string | number | boolean>; hba: HbaRule[] };
  connection: ConnectionConfig & { transport: 'ssh' | 'local' };
  vars: Record<string, unknown>;
}
