import { PgplayError } from '../core/errors.js';
import { ROLES, type Host, type Inventory, type Role } from '../model/inventory.js';
import { resolveLayout } from '../postgres/layout.js';
import { resolveService } from '../postgres/service-defaults.js';
import { resolvePgbackrest } from '../postgres/pgbackrest-config.js';
import { resolveRestoreCommand } from './restore-command.js';
import { didYouMean } from '../schema/describe.js';

export const POSTGRES_DEFAULTS = {
  port: 5432,
  osUser: 'postgres',
  superuser: 'postgres',
  socketDir: '/var/run/postgresql',
} as const;

export const CONNECTION_DEFAULTS = { transport: 'ssh', user: 'root', port: 22 } as const;

export function defaultBindir(version: number): string {
  return `/usr/lib/postgresql/${version}/bin`;
}

/**
 * Every host with the cluster-wide postgres and connection settings merged under its own overrides, and
 * its layout resolved (config directory; with layout debian, PGDATA defaults to the package's path).
 * `settings` merge key by key (the host wins). A host's `hba` rules come before the cluster's: pg_hba
 * is first-match, so the more specific rules must be read first.
 */
export function resolveHosts(inv: Inventory): Record<string, Host> {
  const out: Record<string, Host> = {};
  for (const [name, entry] of Object.entries(inv.hosts)) {
    const own = entry.postgres ?? {};
    const version = own.version ?? inv.postgres.version;
    const pick = <K extends 'port' | 'osUser' | 'superuser' | 'socketDir'>(key: K) =>
      own[key] ?? inv.postgres[key] ?? POSTGRES_DEFAULTS[key];
    const password = own.password ?? inv.postgres.password;
    const { pgdata, ...layout } = resolveLayout({
      layout: own.layout ?? inv.postgres.layout,
      cluster: own.cluster ?? inv.postgres.cluster,
      version,
      role: entry.role,
      pgdata: entry.pgdata,
    });
    const pgbackrest = resolvePgbackrest(entry.vars, inv);
    const restoreCommand = resolveRestoreCommand(inv, pgbackrest.command);
    out[name] = {
      name,
      address: entry.address,
      role: entry.role,
      ...(entry.upstream !== undefined ? { upstream: entry.upstream } : {}),
      ...(pgdata !== undefined ? { pgdata } : {}),
      postgres: {
        version,
        // A host on another major version must not inherit the cluster's version-specific bindir.
        bindir: own.bindir ?? (own.version === undefined ? inv.postgres.bindir : undefined) ?? defaultBindir(version),
        port: pick('port'),
        osUser: pick('osUser'),
        superuser: pick('superuser'),
        socketDir: pick('socketDir'),
        ...(password !== undefined ? { password } : {}),
        settings: { ...(inv.postgres.settings ?? {}), ...(own.settings ?? {}) },
        hba: [...(own.hba ?? []), ...(inv.postgres.hba ?? [])],
        ...layout,
        ...resolveService({
          service: own.service ?? inv.postgres.service,
          serviceUnit: own.serviceUnit ?? inv.postgres.serviceUnit,
          layout: layout.layout,
          role: entry.role,
          version,
          cluster: layout.cluster,
          host: name,
        }),
      },
      connection: { ...CONNECTION_DEFAULTS, ...(inv.connection ?? {}), ...(entry.connection ?? {}) },
      vars: { ...(entry.vars ?? {}) },
      pgbackrest,
      ...(restoreCommand !== undefined ? { restoreCommand } : {}),
    };
  }
  return out;
}

/**
 * Host names matched by a step's `hosts` (or --limit): host names, roles and `all`, as one string
 * (comma-separated allowed) or a list. The result follows inventory order without duplicates, so runs
 * are reproducible. An unknown name is an error: a typo must never silently select nothing.
 */
export function selectHosts(pattern: string | ReadonlyArray<string>, hosts: Record<string, Host>): string[] {
  const wanted = (typeof pattern === 'string' ? [pattern] : pattern)
    .flatMap((p) => p.split(','))
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const names = Object.keys(hosts);
  const selected = new Set<string>();
  for (const w of wanted) {
    if (w === 'all') names.forEach((n) => selected.add(n));
    else if (w in hosts) selected.add(w);
    else if ((ROLES as readonly string[]).includes(w)) {
      names.filter((n) => hosts[n]!.role === (w as Role)).forEach((n) => selected.add(n));
    } else {
      throw unknownHost(w, names);
    }
  }
  return names.filter((n) => selected.has(n));
}

export function describeHostChoices(names: ReadonlyArray<string>): string {
  return `a host name (${names.join(', ')}), a role (${ROLES.join(', ')}) or all`;
}

export function unknownHost(name: string, names: ReadonlyArray<string>): PgplayError {
  const guess = didYouMean(name, [...names, ...ROLES, 'all']);
  return new PgplayError({
    code: 'SEMANTIC',
    message: `unknown host or role "${name}"${guess ? `; did you mean "${guess}"?` : ''}`,
    expected: describeHostChoices(names),
  });
}
