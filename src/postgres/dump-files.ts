/**
 * Logical dumps on disk: their names, which of them are complete, and which retention removes.
 *
 * A dump is `<cluster>-<database>-<UTC start>.<dir|dump>` (pg_dump's directory or custom format), the
 * globals `<cluster>-globals-<UTC start>.sql` (pg_dumpall --globals-only). Beside each: `<name>.json`
 * (the manifest: source, format, the row count of every table in the dump's own snapshot) and
 * `<name>.sha256` (sha256sum lines of every file of the dump and of the manifest). The checksum file is
 * written last, so a dump is complete exactly when it exists: a dump that stopped half-way (still named
 * `<name>.partial`, or without its checksum file) never counts as a dump, is never chosen for a restore
 * and is removed by the next run of the same cluster (runs of one cluster exclude each other).
 *
 * The database part of a name is encoded (every byte outside [A-Za-z0-9_.] as %XX, '-' included), so a
 * name parses back to exactly one cluster, database and time, whatever the database is called.
 */
import { posix } from 'node:path';
import type { Host, Inventory } from '../model/inventory.js';

export type DumpFormat = 'directory' | 'custom';
export type DumpKind = DumpFormat | 'globals';

const EXTENSION: Record<DumpKind, string> = { directory: 'dir', custom: 'dump', globals: 'sql' };
const KIND_OF: Record<string, DumpKind> = { dir: 'directory', dump: 'custom', sql: 'globals' };
const NAME = /^(.+)-([^-]+)-(\d{8}T\d{6}\.\d{3}Z)\.(dir|dump|sql)$/;

export interface DumpName {
  /** The dump's own file or directory name (no directory). */
  name: string;
  cluster: string;
  /** The database; undefined for the globals. */
  database?: string;
  kind: DumpKind;
  /** Milliseconds since the epoch, from the name (the dump's start, UTC). */
  time: number;
  stamp: string;
}

export interface DumpEntry extends DumpName {
  complete: boolean;
  /** Still being written (or abandoned) under `<name>.partial`. */
  partial: boolean;
}

export function encodeDatabase(db: string): string {
  return [...Buffer.from(db, 'utf8')].map((b) => (/[A-Za-z0-9_.]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

export function decodeDatabase(s: string): string {
  return Buffer.from(s.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}

/** 2026-12-03T16:30:12.345Z -> 20261203T163012.345Z */
export function stampOf(time: Date): string {
  return time.toISOString().replace(/[-:]/g, '');
}

function timeOfStamp(stamp: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/.exec(stamp)!;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!);
}

export function dumpName(cluster: string, kind: DumpKind, database: string | undefined, time: Date): string {
  const middle = kind === 'globals' ? 'globals' : encodeDatabase(database!);
  return `${cluster}-${middle}-${stampOf(time)}.${EXTENSION[kind]}`;
}

export function parseDumpName(name: string): DumpName | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const kind = KIND_OF[m[4]!]!;
  if (kind === 'globals' && m[2] !== 'globals') return undefined;
  return { name, cluster: m[1]!, database: kind === 'globals' ? undefined : decodeDatabase(m[2]!), kind, time: timeOfStamp(m[3]!), stamp: m[3]! };
}

/** The dumps of one cluster among the names of a directory, newest first. */
export function dumpsIn(names: string[], cluster: string): DumpEntry[] {
  const present = new Set(names);
  const out: DumpEntry[] = [];
  for (const file of names) {
    const partial = file.endsWith('.partial');
    const parsed = parseDumpName(partial ? file.slice(0, -'.partial'.length) : file);
    if (!parsed || parsed.cluster !== cluster) continue;
    out.push({ ...parsed, partial, complete: !partial && present.has(`${parsed.name}.sha256`) });
  }
  return out.sort((a, b) => b.time - a.time || (a.name < b.name ? 1 : -1));
}

/** The group a dump's retention counts in: one per database, one for the globals. */
export function groupOf(d: Pick<DumpName, 'kind' | 'database'>): string {
  return d.kind === 'globals' ? '\u0000globals' : `db:${d.database}`;
}

export interface Retention {
  /** Complete dumps kept per database (and of the globals). */
  keep?: number;
  /** Complete dumps older than this (ms) are removed. */
  maxAgeMs?: number;
}

export interface RetentionVerdict {
  entry: DumpEntry;
  reason: string;
}

/**
 * What retention removes: per group, complete dumps beyond the newest `keep` and those older than
 * `maxAgeMs`, never the newest complete one; and every incomplete one that is not in `current` (the
 * dumps this run is writing).
 */
export function retentionRemoves(entries: DumpEntry[], retention: Retention, now: number, current: ReadonlySet<string> = new Set()): RetentionVerdict[] {
  const removes: RetentionVerdict[] = [];
  const groups = new Map<string, DumpEntry[]>();
  for (const e of entries) {
    if (!e.complete) {
      if (current.has(e.name)) continue;
      removes.push({ entry: e, reason: 'incomplete (a dump that stopped before its checksum file was written)' });
      continue;
    }
    const g = groups.get(groupOf(e)) ?? [];
    g.push(e);
    groups.set(groupOf(e), g);
  }
  for (const group of groups.values()) {
    group.sort((a, b) => b.time - a.time);
    group.forEach((e, i) => {
      if (i === 0) return; // the newest complete dump is never removed
      if (retention.keep !== undefined && i >= retention.keep) removes.push({ entry: e, reason: `beyond the newest ${retention.keep}` });
      else if (retention.maxAgeMs !== undefined && now - e.time > retention.maxAgeMs) removes.push({ entry: e, reason: `older than the maximum age` });
    });
  }
  return removes;
}

/** The files that make up a dump, the checksum file first (so that removing stops being complete at once). */
export function filesOf(name: string): string[] {
  return [`${name}.sha256`, `${name}.json`, name, `${name}.partial`, `${name}.json.partial`, `${name}.sha256.partial`];
}

/** Where dumps go on a host: its `dumps_dir` host var, else `dumps/` in the backup repository path. */
export function defaultDumpDir(inventory: Inventory, host: Host): string {
  const own = host.vars?.dumps_dir;
  if (typeof own === 'string' && own) return own;
  return posix.join(inventory.backup?.repoPath ?? '/var/lib/pgplay/backups', 'dumps');
}

/** The host that holds the dumps by default: the repository host, else the primary. */
export function defaultDumpHost(inventory: Inventory, hosts: Record<string, Host>): Host | undefined {
  const name = inventory.backup?.repoHost ?? Object.values(hosts).find((h) => h.role === 'primary')?.name;
  return name ? hosts[name] : undefined;
}
