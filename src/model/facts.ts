/** What pgplay reads about a host before acting. The inventory is a claim; facts are the truth. */
export interface ReplicationClient {
  application_name: string;
  client_addr: string | null;
  state: string;
  sync_state: string;
  replay_lsn: string | null;
  lag_bytes: number | null;
}

export interface HostFacts {
  reachable: boolean;
  /** Why the host could not be read, when reachable is false or a probe failed. */
  error?: string;
  hostname?: string;
  /** OS user the transport runs as before become. */
  user?: string;
  /** PGDATA exists and holds PG_VERSION. */
  pgdata_present: boolean;
  /** Major version from PGDATA/PG_VERSION, when present. */
  pgdata_version?: number;
  /** A postmaster is running for PGDATA. */
  running: boolean;
  pid?: number;
  /** Server major version (from the running server, else PG_VERSION). */
  version?: number;
  server_version_num?: number;
  in_recovery?: boolean;
  timeline?: number;
  system_identifier?: string;
  /** pg_controldata's "Database cluster state" (e.g. "in production", "in archive recovery", "shut down"). */
  cluster_state?: string;
  current_lsn?: string;
  receive_lsn?: string;
  replay_lsn?: string;
  replay_paused?: boolean;
  replication_clients?: ReplicationClient[];
  /** The running server's own settings, asked at the inventory's socket and port (src/postgres/server-paths.ts). */
  config_file?: string;
  hba_file?: string;
  data_directory?: string;
  /** Where that server contradicts the inventory's pgdata or layout; a run refuses to start (exit 3). */
  layout_contradictions?: string[];
  /** What the inventory's postgres.bindir holds on this host: pg_ctl, and the major of its postgres binary. */
  bindir?: { pg_ctl: boolean; postgres_major?: number };
}

export function unknownFacts(error?: string): HostFacts {
  return { reachable: false, error, pgdata_present: false, running: false };
}
