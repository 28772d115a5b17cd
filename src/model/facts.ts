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
  /** The OS user the facts script ran as: the PGDATA owner (postgres.osUser) on a host with a pgdata, else the connection's user. */
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
  /**
   * What the inventory's postgres.bindir holds on this host (hosts with a pgdata only): pg_ctl, and the major of its
   * binaries (the running postmaster's own version when it runs from there, else `pg_ctl --version`).
   */
  bindir?: { pg_ctl: boolean; postgres_major?: number };
}

export function unknownFacts(error?: string): HostFacts {
  return { reachable: false, error, pgdata_present: false, running: false };
}

/**
 * The parts of a host's facts a step can change, which the engine reads again after it (and nothing else):
 * - 'pgdata': the data directory: whether it holds a cluster, its version, pg_control's system identifier,
 *   state and checkpoint timeline (a restore, a copy, initdb, pg_rewind).
 * - 'server': the running server: running, pid, recovery, timeline, LSNs, replication clients (a start,
 *   stop, promotion); it includes 'pgdata', since starting and stopping rewrite pg_control.
 * What a run never changes (host name, OS user, the bindir's binaries) and where the server keeps its
 * files (read once, for the layout check at the start) are not refreshed.
 */
export type FactArea = 'pgdata' | 'server';

const PGDATA_KEYS = ['pgdata_present', 'pgdata_version', 'system_identifier', 'cluster_state'] as const;
/** Values of the server that, when none runs, come from the data directory instead (version, timeline). */
const SERVER_KEYS = [
  'running',
  'pid',
  'version',
  'server_version_num',
  'in_recovery',
  'timeline',
  'current_lsn',
  'receive_lsn',
  'replay_lsn',
  'replay_paused',
  'replication_clients',
] as const;

/** The facts a step can change (its areas, above): a value reading one may read otherwise once the steps before it ran. */
export const CHANGEABLE_FACT_KEYS: ReadonlySet<string> = new Set<string>([...PGDATA_KEYS, ...SERVER_KEYS]);

/**
 * The facts after a step that changed `areas`: those read again (`fresh`), the rest as they were. A fresh
 * read that failed (unreachable) replaces everything: nothing known before may be trusted then.
 */
export function mergeFacts(previous: HostFacts | undefined, fresh: HostFacts, areas: readonly FactArea[]): HostFacts {
  if (!previous || !previous.reachable || !fresh.reachable) return fresh;
  const server = areas.includes('server');
  const out: HostFacts = { ...previous };
  const take = (key: keyof HostFacts) => {
    if (fresh[key] === undefined) delete out[key];
    else (out as unknown as Record<string, unknown>)[key] = fresh[key];
  };
  PGDATA_KEYS.forEach(take);
  // Without a server the version and timeline are the data directory's: a stopped server's follow it.
  if (server) SERVER_KEYS.forEach(take);
  else if (!previous.running) (['version', 'timeline'] as const).forEach(take);
  if (server || fresh.error !== undefined) take('error');
  return out;
}
