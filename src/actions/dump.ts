/**
 * The dump action: logical backups of the cluster (src/postgres/dump-files.ts says how they lie on disk).
 *
 * - command dump: pg_dump of each database (directory format with -j, or custom), pg_dumpall
 *   --globals-only, run on this host against the source server (the primary by default). Each database's
 *   rows are counted in the very snapshot pg_dump dumps (pgplay exports it and passes --snapshot), so the
 *   manifest says exactly what the dump holds. Then retention: by count and age per database, never the
 *   newest complete dump; incomplete leftovers go.
 * - command list: the complete dumps (read-only).
 * - command verify: every complete dump (or the newest of each database) against its checksum file;
 *   a mismatch fails the step naming the file.
 */
import type { Client } from 'pg';
import { parseDuration } from '../core/duration.js';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { defaultDumpDir, dumpName, groupOf, parseDumpName, retentionRemoves, type DumpEntry, type DumpFormat, type Retention } from '../postgres/dump-files.js';
import { commandFailed, pgBin } from '../postgres/owner.js';
import { countTables } from '../postgres/table-counts.js';
import { clientConnection, hostNamed, listDumps, listOf, primaryHost, removeDumps, runAs, verifyDumps } from './logical/common.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface DumpInput {
  command?: 'dump' | 'list' | 'verify';
  dir?: string;
  databases?: string[] | string;
  format?: DumpFormat;
  jobs?: number;
  globals?: boolean;
  source?: string;
  keep?: number;
  max_age?: string;
  newest_only?: boolean;
}

const WRITE = `set -eu
umask 077
mkdir -p -- "$1"
cd "$1"; name=$2; shift 2
rm -rf -- "$name.partial"
"$@" -f "$name.partial"
mv -- "$name.partial" "$name"
printf '%s\\n' "$PGPLAY_MANIFEST" > "$name.json.partial"
mv -- "$name.json.partial" "$name.json"
find "$name" -type f -exec sync -- {} + ; sync -- "$name.json"
{ find "$name" -type f | LC_ALL=C sort | while IFS= read -r f; do sha256sum -- "$f"; done; sha256sum -- "$name.json"; } > "$name.sha256.partial"
sync -- "$name.sha256.partial"
mv -- "$name.sha256.partial" "$name.sha256"
sync -- .`;

interface Written {
  database?: string;
  name: string;
  path: string;
  format: DumpFormat | 'globals';
  tables?: Record<string, number>;
}

function dirOf(ctx: ActionContext, input: DumpInput): string {
  return input.dir || defaultDumpDir(ctx.inventory, ctx.host);
}

function retentionOf(input: DumpInput): Retention {
  return { keep: input.keep, maxAgeMs: input.max_age ? parseDuration(input.max_age, 'max_age') : undefined };
}

function sourceOf(ctx: ActionContext, input: DumpInput): Host {
  return input.source ? hostNamed(ctx, input.source, 'source') : primaryHost(ctx);
}

async function withSource<T>(ctx: ActionContext, source: Host, database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await ctx.connectPostgres({ hostName: source.name, database });
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function databasesOf(ctx: ActionContext, source: Host, input: DumpInput): Promise<string[]> {
  const all = await withSource(ctx, source, 'postgres', async (c) => (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1')).rows.map((r) => r.datname));
  const wanted = listOf(input.databases) ?? [];
  if (!wanted.length) return all;
  const missing = wanted.filter((d) => !all.includes(d));
  if (missing.length) throw new PgplayError({ code: 'STEP_FAILED', message: `no database ${missing.join(', ')} on ${source.name} to dump`, expected: `one of ${all.join(', ')}` });
  return wanted;
}

function describeRemoval(ctx: ActionContext, input: DumpInput, entries: DumpEntry[], current: Set<string>): { removes: ReturnType<typeof retentionRemoves>; lines: string[] } {
  const removes = retentionRemoves(entries, retentionOf(input), Date.now(), current);
  return { removes, lines: removes.map((r) => `remove ${r.entry.name}: ${r.reason}`) };
}

async function dumpDatabase(ctx: ActionContext, source: Host, input: DumpInput, dir: string, database: string): Promise<Written> {
  const format = input.format ?? 'directory';
  const started = new Date();
  const name = dumpName(ctx.inventory.cluster, format, database, started);
  const conn = clientConnection(ctx.host, source);
  return withSource(ctx, source, database, async (c) => {
    // The rows are counted in the snapshot pg_dump then dumps: the manifest says what the dump holds.
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snap = (await c.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    const info = (await c.query<{ v: string; e: string }>("SELECT current_setting('server_version') AS v, pg_encoding_to_char(encoding) AS e FROM pg_database WHERE datname = current_database()")).rows[0]!;
    const tables = await countTables(c);
    const argv = [pgBin(ctx.host, 'pg_dump'), ...conn.args, `--snapshot=${snap}`, format === 'directory' ? '-Fd' : '-Fc'];
    if (format === 'directory' && (input.jobs ?? 1) > 1) argv.push('-j', String(input.jobs));
    const manifest = { kind: 'pgplay-dump', cluster: ctx.inventory.cluster, database, format, source: source.name, started: started.toISOString(), server_version: info.v, encoding: info.e, tables };
    const r = await runAs(ctx, ctx.host, ctx.transport, ['/bin/sh', '-c', WRITE, 'pgplay-dump', dir, name, ...argv], {
      ...conn.env,
      PGDATABASE: database,
      PGPLAY_MANIFEST: JSON.stringify({ ...manifest, finished: new Date().toISOString() }),
    });
    await c.query('COMMIT');
    if (r.exitCode !== 0) throw commandFailed(`pg_dump of database ${database} from ${source.name} on ${ctx.host.name} failed`, r);
    ctx.log(`${name}: ${Object.keys(tables).length} tables`);
    return { database, name, path: `${dir}/${name}`, format, tables };
  });
}

async function dumpGlobals(ctx: ActionContext, source: Host, dir: string): Promise<Written> {
  const started = new Date();
  const name = dumpName(ctx.inventory.cluster, 'globals', undefined, started);
  const conn = clientConnection(ctx.host, source);
  const argv = [pgBin(ctx.host, 'pg_dumpall'), ...conn.args, '--globals-only'];
  const manifest = { kind: 'pgplay-globals', cluster: ctx.inventory.cluster, source: source.name, started: started.toISOString() };
  const r = await runAs(ctx, ctx.host, ctx.transport, ['/bin/sh', '-c', WRITE, 'pgplay-dump', dir, name, ...argv], { ...conn.env, PGPLAY_MANIFEST: JSON.stringify(manifest) });
  if (r.exitCode !== 0) throw commandFailed(`pg_dumpall --globals-only from ${source.name} on ${ctx.host.name} failed`, r);
  return { name, path: `${dir}/${name}`, format: 'globals' };
}

function summary(e: DumpEntry, dir: string) {
  return { name: e.name, path: `${dir}/${e.name}`, database: e.database ?? null, kind: e.kind, time: new Date(e.time).toISOString() };
}

async function listing(ctx: ActionContext, input: DumpInput): Promise<Outcome> {
  const dir = dirOf(ctx, input);
  const wanted = listOf(input.databases) ?? [];
  const entries = (await listDumps(ctx, ctx.host, ctx.transport, dir)).filter((e) => e.complete && (!wanted.length || (e.database !== undefined && wanted.includes(e.database))));
  const databases = [...new Set(entries.filter((e) => e.database !== undefined).map((e) => e.database!))].sort();
  const newest = databases.map((d) => entries.find((e) => e.database === d)!);
  return {
    changed: false,
    msg: `${entries.length} complete dumps of ${databases.length} databases in ${dir}`,
    data: { dir, dumps: entries.map((e) => summary(e, dir)), databases, newest: newest.map((e) => summary(e, dir)) },
  };
}

async function verify(ctx: ActionContext, input: DumpInput): Promise<Outcome> {
  const listed = await listing(ctx, input);
  const dir = listed.data!.dir as string;
  const chosen = (input.newest_only ? listed.data!.newest : listed.data!.dumps) as Array<{ name: string }>;
  if (chosen.length === 0) throw new PgplayError({ code: 'STEP_FAILED', message: `no complete dump of cluster ${ctx.inventory.cluster} in ${dir} on ${ctx.host.name} to verify` });
  const bad = await verifyDumps(ctx, ctx.host, ctx.transport, dir, chosen.map((d) => d.name));
  if (bad.length) throw new PgplayError({ code: 'STEP_FAILED', message: `checksum mismatch in ${dir} on ${ctx.host.name}: ${bad.join('; ')}`, hint: 'the dump changed after it was written: do not restore it; take a new one' });
  return { changed: false, msg: `${chosen.length} dumps match their checksum files`, data: { dir, verified: chosen.map((d) => d.name) } };
}

export const dumpAction: Action<DumpInput> = {
  name: 'dump',
  connects: true,
  // A dump file in the repository.
  changes: [],
  summary:
    'Logical backups: pg_dump of each database (directory format with -j N, or custom) and pg_dumpall --globals-only into a directory on this host, ' +
    'named <cluster>-<database>-<UTC start>, each with a manifest (the row count of every table in the dump\'s own snapshot) and a SHA-256 checksum file written last ' +
    '(a dump without it is incomplete and never counts); retention by count and age, never the newest complete dump. command list shows the complete dumps; ' +
    'command verify checks them against their checksum files.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      command: { enum: ['dump', 'list', 'verify'], description: 'dump (default): dump and apply retention; list: the complete dumps (read-only); verify: checksums (read-only).' },
      dir: { type: 'string', pattern: '^(/.*)?$', description: "The dump directory on this host; default the host var dumps_dir, else <backup.repoPath>/dumps ('' : the default)." },
      databases: { type: ['array', 'string'], items: { type: 'string', minLength: 1 }, description: 'The databases, a list or comma-separated (default: every database that accepts connections, templates excepted).' },
      format: { enum: ['directory', 'custom'], description: 'pg_dump -Fd (default; -j works) or -Fc (one file).' },
      jobs: { type: 'integer', minimum: 1, maximum: 64, description: 'pg_dump -j N: parallel jobs of a directory-format dump (pg_dump writes a custom-format file in one process).' },
      globals: { type: 'boolean', description: 'Also pg_dumpall --globals-only (roles with their password verifiers, tablespaces); default true.' },
      source: { type: 'string', description: 'The host whose server is dumped; default the primary.' },
      keep: { type: 'integer', minimum: 1, description: 'Complete dumps kept per database (and of the globals); older ones are removed.' },
      max_age: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d|w)?$', description: 'Complete dumps older than this (e.g. 30d) are removed, except the newest of each database.' },
      newest_only: { type: 'boolean', description: 'verify: only the newest dump of each database (default: every complete dump).' },
    },
  },
  readOnly: (input) => input.command === 'list' || input.command === 'verify',

  async check(ctx, input): Promise<Outcome> {
    // Both only read: plan runs them as a real run does (and a run never calls apply for an unchanged check).
    if (input.command === 'list') return listing(ctx, input);
    if (input.command === 'verify') return verify(ctx, input);
    const dir = dirOf(ctx, input);
    const source = sourceOf(ctx, input);
    const databases = (await ctx.factsOf(source.name)).running ? await databasesOf(ctx, source, input) : (listOf(input.databases) ?? []);
    const groups = new Set([...databases.map((d) => groupOf({ kind: 'directory', database: d })), ...(input.globals === false ? [] : [groupOf({ kind: 'globals' })])]);
    const entries = (await listDumps(ctx, ctx.host, ctx.transport, dir)).filter((e) => !e.complete || groups.has(groupOf(e)));
    const { lines } = describeRemoval(ctx, input, entries, new Set());
    return { changed: true, msg: [`would dump ${databases.join(', ') || 'every database'}${input.globals === false ? '' : ' and the globals'} of ${source.name} into ${dir}`, ...lines].join('; ') };
  },

  async apply(ctx, input): Promise<Outcome> {
    if (input.command === 'list') return listing(ctx, input);
    if (input.command === 'verify') return verify(ctx, input);
    const dir = dirOf(ctx, input);
    const source = sourceOf(ctx, input);
    const written: Written[] = [];
    for (const db of await databasesOf(ctx, source, input)) written.push(await dumpDatabase(ctx, source, input, dir, db));
    if (input.globals !== false) written.push(await dumpGlobals(ctx, source, dir));
    // Retention touches the databases (and globals) this run dumped, and incomplete leftovers: a run
    // for one database never thins out another's dumps.
    const groups = new Set(written.map((w) => groupOf(parseDumpName(w.name)!)));
    const entries = (await listDumps(ctx, ctx.host, ctx.transport, dir)).filter((e) => !e.complete || groups.has(groupOf(e)));
    const { removes } = describeRemoval(ctx, input, entries, new Set(written.map((w) => w.name)));
    await removeDumps(ctx, ctx.host, ctx.transport, dir, removes.map((r) => r.entry.name));
    for (const r of removes) ctx.log(`removed ${r.entry.name}: ${r.reason}`);
    return {
      changed: true,
      msg: `dumped ${written.map((w) => w.name).join(', ')} into ${dir}${removes.length ? `; removed ${removes.map((r) => r.entry.name).join(', ')}` : ''}`,
      data: { dir, dumps: written, removed: removes.map((r) => ({ name: r.entry.name, reason: r.reason })) },
    };
  },
};

export default dumpAction;
