/**
 * Distribution layouts: where a cluster's files live.
 *
 * - `debian` (postgresql-common): config in /etc/postgresql/<version>/<cluster>/, PGDATA by default in
 *   /var/lib/postgresql/<version>/<cluster>, the server log pg_ctlcluster writes in /var/log/postgresql.
 * - `pgdata` (PGDG's RHEL packages, hand-built servers, the lab): postgresql.conf and pg_hba.conf in PGDATA.
 *
 * Both use /usr/lib/postgresql/<version>/bin and /var/run/postgresql unless the inventory says otherwise
 * (see POSTGRES_DEFAULTS and defaultBindir in load/hosts.ts).
 */
import type { Layout, ResolvedLayout, Role } from '../model/inventory.js';

export const DEFAULT_LAYOUT: Layout = 'pgdata';
export const DEFAULT_DEBIAN_CLUSTER = 'main';

/**
 * Roles whose PGDATA the debian layout may default. A drill host is left out on purpose: the drill
 * replaces its PGDATA with a restored copy and removes it afterwards, so it must be named, never
 * guessed to be the package's cluster.
 */
export const DEBIAN_DEFAULT_PGDATA_ROLES: ReadonlySet<Role> = new Set(['primary', 'standby']);

export function debianConfigDir(version: number, cluster: string): string {
  return `/etc/postgresql/${version}/${cluster}`;
}

export function debianPgdata(version: number, cluster: string): string {
  return `/var/lib/postgresql/${version}/${cluster}`;
}

export function debianLogFile(version: number, cluster: string): string {
  return `/var/log/postgresql/postgresql-${version}-${cluster}.log`;
}

export interface LayoutInput {
  layout?: Layout;
  cluster?: string;
  version: number;
  role: Role;
  /** The inventory's pgdata for the host, if any. */
  pgdata?: string;
}

/**
 * The host's layout with its paths; `pgdata` is the inventory's, else the layout's default (if any). The
 * paths are there only for a host with a PGDATA: a repository host has no cluster files.
 */
export function resolveLayout(input: LayoutInput): ResolvedLayout & { pgdata?: string } {
  const layout = input.layout ?? DEFAULT_LAYOUT;
  if (layout === 'pgdata') {
    return { layout, ...(input.pgdata !== undefined ? { pgdata: input.pgdata, configDir: input.pgdata } : {}) };
  }
  const cluster = input.cluster ?? DEFAULT_DEBIAN_CLUSTER;
  const pgdata = input.pgdata ?? (DEBIAN_DEFAULT_PGDATA_ROLES.has(input.role) ? debianPgdata(input.version, cluster) : undefined);
  // A host without a cluster (a repository) has no cluster files either.
  if (pgdata === undefined) return { layout, cluster };
  // A drill host's PGDATA holds a restored copy that pgplay configures inside PGDATA (pitr-drill.yml writes
  // its postgresql.conf there when the backup had none) and starts with pg_ctl: no Debian cluster
  // describes it, so its configuration is where the copy is, whatever the cluster's layout.
  if (input.role === 'drill') return { layout, cluster, pgdata, configDir: pgdata };
  return { layout, cluster, pgdata, configDir: debianConfigDir(input.version, cluster), logFile: debianLogFile(input.version, cluster) };
}
