/**
 * The restore_dump action: a logical dump (the dump action's) back into this host's server.
 *
 * A database dump goes into a NEW database (`into`): one that exists and holds anything is refused
 * (exit 3), under plan too; pgplay never restores over objects. The dump is checked against its checksum
 * file first; pg_restore runs with -j, optionally only some tables or schemas; then every restored
 * table's rows are counted and compared with the manifest (the source's counts in the dump's own
 * snapshot): a table that differs fails the step by name, as does any pg_restore error.
 *
 * `globals: true` restores the newest globals file instead: roles the server lacks are created as dumped,
 * roles it has keep their password unless `passwords: true` (src/postgres/globals-sql.ts).
 */
import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { defaultDumpDir, defaultDumpHost, parseDumpName, type DumpEntry } from '../postgres/dump-files.js';
import { describeStatement, planGlobals } from '../postgres/globals-sql.js';
import { pgBin } from '../postgres/owner.js';
import { compareCounts, countTables, describeDifference, type TableCounts } from '../postgres/table-counts.js';
import { hostNamed, listDumps, listOf, runAs, verifyDumps } from './logical/common.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface RestoreDumpInput {
  from?: string;
  dir?: string;
  database?: string;
  databases?: string[] | string;
  file?: string;
  into?: string;
  into_prefix?: string;
  jobs?: number;
  tables?: string[] | string;
  schemas?: string[] | string;
  no_owner?: boolean;
  no_privileges?: boolean;
  compare?: boolean;
  globals?: boolean;
  passwords?: boolean;
}

interface Source {
  host: Host;
  dir: string;
  entry: DumpEntry;
  /** The database it goes into (database dumps). */
  into: string;
}

function bad(message: string, expected: string): PgplayError {
  return new PgplayError({ code: 'SEMANTIC', message, expected });
}

function validate(input: RestoreDumpInput): void {
  const tables = listOf(input.tables) ?? [];
  const schemas = listOf(input.schemas) ?? [];
  if (input.globals) {
    if (input.into || input.into_prefix || input.database || input.databases !== undefined || input.file || tables.length || schemas.length) {
      throw bad('restore_dump with globals: true restores roles and tablespaces only', 'no into, into_prefix, database, databases, file, tables or schemas with globals: true');
    }
    return;
  }
  const modes = [input.database, input.file, input.databases].filter((x) => x !== undefined && x !== '').length + (input.databases === '' ? 1 : 0);
  if (modes !== 1) throw bad('restore_dump needs exactly one of database (its newest complete dump), databases (the newest of each) and file (a given dump)', 'database: <name>, databases: [<name>, ...] (empty: every database with a dump) or file: <dump name>');
  if (input.databases !== undefined) {
    if (!input.into_prefix || input.into) throw bad('databases restores each into <into_prefix><database>', 'into_prefix: <prefix>, and no into');
  } else if (!input.into || input.into_prefix) throw bad('restore_dump needs the new database to restore into', 'into: <a database that does not exist yet (or is empty)>');
  if (tables.length && schemas.length) throw bad('restore_dump takes tables or schemas, not both', 'tables: [...] or schemas: [...]');
  const tableSchemas = new Set(tables.map((t) => (t.includes('.') ? t.split('.')[0] : 'public')));
  if (tableSchemas.size > 1) throw bad(`tables from several schemas (${tables.join(', ')}): pg_restore selects tables by name within the schemas given`, 'tables of one schema per step');
}

/** Where the dumps are, and that this host can read them. */
function dumpHost(ctx: ActionContext, input: RestoreDumpInput): Host {
  const from = input.from?.trim() ? hostNamed(ctx, input.from, 'from') : defaultDumpHost(ctx.inventory, ctx.hosts);
  if (!from) throw bad('no host holds the dumps', 'from: <host>, backup.repoHost or a primary');
  const sameMachine = from.name === ctx.host.name || (from.connection.transport === 'local' && ctx.host.connection.transport === 'local');
  if (!sameMachine) {
    throw bad(
      `the dumps are on ${from.name} and pg_restore runs on ${ctx.host.name}, another machine: pgplay does not copy dumps between machines`,
      `restore on ${from.name}, or copy the dump to ${ctx.host.name} and give from: ${ctx.host.name} with its dir`,
    );
  }
  return from;
}

/** The dumps this input restores: one (database, file, globals) or the newest of each database (databases). */
async function chooseDumps(ctx: ActionContext, input: RestoreDumpInput): Promise<Source[]> {
  const host = dumpHost(ctx, input);
  const dir = input.dir || defaultDumpDir(ctx.inventory, host);
  const transport = host.name === ctx.host.name ? ctx.transport : ctx.transportFor(host.name);
  const entries = (await listDumps(ctx, host, transport, dir)).filter((e) => e.complete);
  const where = `of cluster ${ctx.inventory.cluster} in ${dir} on ${host.name}`;
  if (input.databases !== undefined) {
    const wanted = listOf(input.databases)!;
    const names = wanted.length ? wanted : [...new Set(entries.filter((e) => e.kind !== 'globals').map((e) => e.database!))].sort();
    if (names.length === 0) throw new PgplayError({ code: 'STEP_FAILED', message: `no complete dump ${where}` });
    return names.map((db) => {
      const entry = entries.find((e) => e.kind !== 'globals' && e.database === db);
      if (!entry) throw new PgplayError({ code: 'STEP_FAILED', message: `no complete dump of database ${db} ${where}` });
      return { host, dir, entry, into: `${input.into_prefix}${db}` };
    });
  }
  let entry: DumpEntry | undefined;
  if (input.file) {
    const name = input.file.startsWith('/') ? input.file.slice(input.file.lastIndexOf('/') + 1) : input.file;
    if (input.file.startsWith('/') && input.file.slice(0, input.file.lastIndexOf('/')) !== dir.replace(/\/+$/, '')) throw bad(`file ${input.file} is not in the dump directory ${dir}`, 'file: a dump name in dir (or give dir)');
    entry = entries.find((e) => e.name === name);
    if (!entry) throw new PgplayError({ code: 'STEP_FAILED', message: `${name} is not a complete dump in ${dir} on ${host.name}${parseDumpName(name) ? ' (no checksum file: it is missing or incomplete)' : ''}` });
  } else {
    entry = entries.find((e) => (input.globals ? e.kind === 'globals' : e.kind !== 'globals' && e.database === input.database));
    if (!entry) throw new PgplayError({ code: 'STEP_FAILED', message: `no complete ${input.globals ? 'globals dump' : `dump of database ${input.database}`} ${where}` });
  }
  if (Boolean(input.globals) !== (entry.kind === 'globals')) throw bad(`${entry.name} is ${entry.kind === 'globals' ? 'a globals file' : 'a database dump'}`, input.globals ? 'a globals file with globals: true' : 'a database dump');
  return [{ host, dir, entry, into: input.into ?? '' }];
}

async function withClient<T>(ctx: ActionContext, database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await ctx.connectPostgres({ database });
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** What the target database holds (empty list: nothing of a user), or undefined when it does not exist. */
async function targetContents(ctx: ActionContext, into: string): Promise<string[] | undefined> {
  const exists = await withClient(ctx, 'postgres', async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [into])).rowCount! > 0);
  if (!exists) return undefined;
  return withClient(ctx, into, async (c) => {
    const r = await c.query<{ what: string }>(`
      SELECT format('%s %I.%I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'table' WHEN 'f' THEN 'foreign table' ELSE 'relation' END, n.nspname, c.relname) AS what
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'v', 'S', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
      UNION ALL SELECT format('schema %I', nspname) FROM pg_namespace WHERE nspname NOT IN ('public', 'pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'
      UNION ALL SELECT format('function %s', p.oid::regprocedure) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      UNION ALL SELECT format('extension %I', extname) FROM pg_extension WHERE extname <> 'plpgsql'
      ORDER BY 1 LIMIT 6`);
    return r.rows.map((x) => x.what);
  });
}

async function guardTarget(ctx: ActionContext, into: string): Promise<'new' | 'empty'> {
  const contents = await targetContents(ctx, into);
  if (contents === undefined) return 'new';
  if (contents.length) {
    throw new PgplayError({
      code: 'GUARD',
      message: `database ${into} already exists on ${ctx.host.name} and is not empty (${contents.slice(0, 5).join(', ')}${contents.length > 5 ? ', ...' : ''}): restore_dump restores only into a new or empty database`,
      hint: 'choose another into: name, or drop that database yourself if it is really to be replaced',
    });
  }
  return 'empty';
}

async function readManifest(ctx: ActionContext, src: Source): Promise<{ tables?: TableCounts; encoding?: string }> {
  const transport = src.host.name === ctx.host.name ? ctx.transport : ctx.transportFor(src.host.name);
  const raw = await transport.readFile(`${src.dir}/${src.entry.name}.json`, { become: src.host.postgres.osUser });
  if (!raw) throw new PgplayError({ code: 'STEP_FAILED', message: `${src.entry.name}.json, the dump's manifest, is missing in ${src.dir} on ${src.host.name}` });
  return JSON.parse(raw.toString('utf8')) as { tables?: TableCounts; encoding?: string };
}

async function verified(ctx: ActionContext, src: Source): Promise<void> {
  const transport = src.host.name === ctx.host.name ? ctx.transport : ctx.transportFor(src.host.name);
  const badFiles = await verifyDumps(ctx, src.host, transport, src.dir, [src.entry.name]);
  if (badFiles.length) throw new PgplayError({ code: 'STEP_FAILED', message: `checksum mismatch in ${src.dir} on ${src.host.name}: ${badFiles.join('; ')}: nothing was restored`, hint: 'the dump changed after it was written: restore an older one (file: <name>) or take a new one' });
}

function conninfoDb(db: string): string {
  return `dbname='${db.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function selected(tables: string[], schemas: string[]): ((schema: string, name: string) => boolean) | undefined {
  if (schemas.length) return (schema) => schemas.includes(schema);
  if (tables.length) {
    const keys = tables.map((t) => (t.includes('.') ? t : `public.${t}`));
    return (schema, name) => keys.includes(`${schema}.${name}`);
  }
  return undefined;
}

function filterCounts(counts: TableCounts, only?: (schema: string, name: string) => boolean): TableCounts {
  if (!only) return counts;
  return Object.fromEntries(Object.entries(counts).filter(([k]) => only(k.slice(0, k.indexOf('.')), k.slice(k.indexOf('.') + 1))));
}

interface Restored {
  data: Record<string, unknown>;
  /** What went wrong: rows that differ (naming each table), pg_restore's errors. */
  problems: string[];
  summary: string;
}

async function restoreDatabase(ctx: ActionContext, input: RestoreDumpInput, src: Source): Promise<Restored> {
  const into = src.into;
  await verified(ctx, src);
  const manifest = await readManifest(ctx, src);
  if ((await guardTarget(ctx, into)) === 'new') {
    const encoding = manifest.encoding && /^[A-Za-z0-9_]+$/.test(manifest.encoding) ? ` ENCODING '${manifest.encoding}'` : '';
    await withClient(ctx, 'postgres', (c) => c.query(`CREATE DATABASE ${quoteIdent(into)} TEMPLATE template0${encoding}`));
  }
  const pg = ctx.host.postgres;
  const tables = listOf(input.tables) ?? [];
  const schemas = listOf(input.schemas) ?? [];
  // pg_restore -n restores what is in a schema, not the schema itself.
  const needed = schemas.length ? schemas : tables.length ? [tables[0]!.includes('.') ? tables[0]!.split('.')[0]! : 'public'] : [];
  if (needed.length) await withClient(ctx, into, async (c) => { for (const sch of needed) await c.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(sch)}`); });
  const argv = [pgBin(ctx.host, 'pg_restore'), '-h', pg.socketDir, '-p', String(pg.port), '-U', pg.superuser, '-d', conninfoDb(into)];
  if ((input.jobs ?? 1) > 1) argv.push('-j', String(input.jobs));
  if (input.no_owner) argv.push('--no-owner');
  if (input.no_privileges) argv.push('--no-privileges');
  for (const sch of schemas) argv.push('-n', sch);
  if (tables.length) argv.push('-n', tables[0]!.includes('.') ? tables[0]!.split('.')[0]! : 'public');
  for (const t of tables) argv.push('-t', t.includes('.') ? t.slice(t.indexOf('.') + 1) : t);
  argv.push(`${src.dir}/${src.entry.name}`);
  const r = await runAs(ctx, ctx.host, ctx.transport, argv);
  const errors = r.exitCode === 0 ? [] : r.stderr.split('\n').filter((l) => /error/i.test(l)).slice(-5);
  if (r.exitCode !== 0 && errors.length === 0) errors.push(`pg_restore exited ${r.exitCode}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  const only = selected(tables, schemas);
  const found = await withClient(ctx, into, (c) => countTables(c, only));
  const expected = filterCounts(manifest.tables ?? {}, only);
  const differences = input.compare === false ? [] : compareCounts(expected, found);
  const problems = [
    ...differences.map((d) => describeDifference(d, `${into} on ${ctx.host.name}`)),
    ...(errors.length ? [`pg_restore of ${src.entry.name} reported errors: ${errors.join(' | ')}`] : []),
  ];
  const total = Object.values(found).reduce((x, y) => x + y, 0);
  return {
    data: { dump: `${src.dir}/${src.entry.name}`, database: src.entry.database, into, tables: found, expected, differences, errors },
    problems,
    summary: `${src.entry.name} into ${into}: ${Object.keys(found).length} tables, ${total} rows`,
  };
}

async function restoreDatabases(ctx: ActionContext, input: RestoreDumpInput, sources: Source[]): Promise<Outcome> {
  const restored: Restored[] = [];
  for (const src of sources) restored.push(await restoreDatabase(ctx, input, src));
  const problems = restored.flatMap((x) => x.problems);
  if (problems.length) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `restored ${restored.length} dump(s) on ${ctx.host.name}, but ${input.compare === false ? '' : 'rows differ from the source or '}pg_restore failed: ${problems.join('; ')}`,
      hint: `the restored databases (${sources.map((x) => x.into).join(', ')}) stay for inspection`,
    });
  }
  const data = restored.length === 1 && input.databases === undefined ? restored[0]!.data : { restored: restored.map((x) => x.data) };
  return { changed: true, msg: `restored ${restored.map((x) => x.summary).join('; ')}${input.compare === false ? '' : '; every table has the rows the source had'}`, data };
}

async function restoreGlobals(ctx: ActionContext, input: RestoreDumpInput, src: Source): Promise<Outcome> {
  await verified(ctx, src);
  const transport = src.host.name === ctx.host.name ? ctx.transport : ctx.transportFor(src.host.name);
  const raw = await transport.readFile(`${src.dir}/${src.entry.name}`, { become: src.host.postgres.osUser });
  if (!raw) throw new PgplayError({ code: 'STEP_FAILED', message: `${src.entry.name} vanished from ${src.dir} on ${src.host.name}` });
  return withClient(ctx, 'postgres', async (c) => {
    const roles = new Set((await c.query<{ n: string }>('SELECT rolname AS n FROM pg_roles')).rows.map((x) => x.n));
    const spaces = new Set((await c.query<{ n: string }>('SELECT spcname AS n FROM pg_tablespace')).rows.map((x) => x.n));
    const plan = planGlobals(raw.toString('utf8'), roles, spaces, input.passwords === true);
    const errors: string[] = [];
    for (const stmt of plan.statements) {
      try {
        await c.query(stmt);
      } catch (e) {
        // The statement itself may hold a password verifier: name it, never print it.
        errors.push(`${describeStatement(stmt)}: ${(e as Error).message}`);
      }
    }
    const data = { dump: `${src.dir}/${src.entry.name}`, created: plan.created, passwords_kept: plan.passwordsKept, passwords_set: plan.passwordsSet, tablespaces_skipped: plan.tablespacesSkipped, errors };
    if (errors.length) throw new PgplayError({ code: 'STEP_FAILED', message: `restore of ${src.entry.name} on ${ctx.host.name}: ${errors.join('; ')}` });
    const kept = plan.passwordsKept.length ? `; the passwords of ${plan.passwordsKept.join(', ')} left as they were` : '';
    return { changed: true, msg: `restored ${src.entry.name}: created ${plan.created.join(', ') || 'no role'}${kept}`, data };
  });
}

export const restoreDumpAction: Action<RestoreDumpInput> = {
  name: 'restore_dump',
  connects: true,
  // Rows in a running server: no fact describes them.
  changes: [],
  summary:
    'Restores a logical dump (the dump action\'s) into this host\'s server: the newest complete dump of a database (or a given one) into a NEW database ' +
    '(an existing non-empty one is refused, exit 3), checked against its checksum file first, pg_restore -j, optionally only some tables or schemas; ' +
    'then compares the row count of every restored table with the source\'s in the dump\'s snapshot and fails naming each table that differs. ' +
    'globals: true restores roles and tablespaces, keeping the passwords of existing roles unless passwords: true.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      from: { type: 'string', description: 'The host holding the dumps (this host or one on the same machine); default backup.repoHost, else the primary.' },
      dir: { type: 'string', pattern: '^(/.*)?$', description: "The dump directory; default that host's dumps_dir var, else <backup.repoPath>/dumps." },
      database: { type: 'string', minLength: 1, description: 'Restore the newest complete dump of this database (into: the new database).' },
      databases: {
        type: ['array', 'string'],
        items: { type: 'string', minLength: 1 },
        description: "Restore the newest complete dump of each of these databases (a list, or comma-separated; empty: every database with a dump), each into <into_prefix><database>.",
      },
      into_prefix: { type: 'string', minLength: 1, maxLength: 40, description: 'With databases: each is restored into <into_prefix><database>.' },
      file: { type: 'string', minLength: 1, description: 'Restore this dump (its name in dir) instead of the newest.' },
      into: { type: 'string', minLength: 1, maxLength: 63, description: 'The new database to restore into: created (encoding as the source); refused (exit 3) when it exists and holds anything.' },
      jobs: { type: 'integer', minimum: 1, maximum: 64, description: 'pg_restore -j N.' },
      tables: { type: ['array', 'string'], items: { type: 'string', minLength: 1 }, description: 'Only these tables ([schema.]name, one schema): their definition and rows (pg_restore -t).' },
      schemas: { type: ['array', 'string'], items: { type: 'string', minLength: 1 }, description: 'Only these schemas (pg_restore -n).' },
      no_owner: { type: 'boolean', description: 'pg_restore --no-owner: objects owned by the restoring superuser (roles of the source need not exist).' },
      no_privileges: { type: 'boolean', description: 'pg_restore --no-privileges: no GRANTs.' },
      compare: { type: 'boolean', description: "Compare every restored table's rows with the source's in the dump's snapshot (default true)." },
      globals: { type: 'boolean', description: 'Restore the newest globals file (roles, tablespaces) instead of a database.' },
      passwords: { type: 'boolean', description: 'globals: also set the dumped password of roles that already exist (default false: their password stays).' },
    },
  },
  destructive: () => false,

  async check(ctx, input): Promise<Outcome> {
    validate(input);
    const sources = await chooseDumps(ctx, input);
    if (input.globals) return { changed: true, msg: `would restore ${sources[0]!.entry.name} (roles the server lacks; existing roles keep their password${input.passwords ? ' unless the dump sets one: passwords: true' : ''})` };
    const lines: string[] = [];
    for (const src of sources) {
      const state = ctx.facts.running ? await guardTarget(ctx, src.into) : 'new';
      lines.push(`would restore ${src.entry.name} into ${state === 'new' ? 'the new database' : 'the empty database'} ${src.into}`);
    }
    return { changed: true, msg: lines.join('; ') };
  },

  async apply(ctx, input): Promise<Outcome> {
    validate(input);
    const sources = await chooseDumps(ctx, input);
    return input.globals ? restoreGlobals(ctx, input, sources[0]!) : restoreDatabases(ctx, input, sources);
  },
};

export default restoreDumpAction;
