/**
 * The data_check action: named data checks on a restored drill copy (src/postgres/data-checks.ts), each
 * passed, failed or could not run. It never fails the step itself: what it found is registered
 * (`checks`, and the counts `failing` and `could_not_run`) for the drill's verdict and report to judge,
 * so every check runs and the copy is still torn down.
 *
 * Only a drill host: amcheck creates its extension in the databases it checks, which pgplay does on a
 * scratch copy and never on a primary or a standby (refused, exit 3). Row counts are compared with the
 * inventory's primary, read-only.
 */
import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import { amcheckDatabase, checkSentinel, chosenDatabases, compareCounts, countTables, readDatabase, splitList, type Connect, type DataCheckResult, type Sentinel } from '../postgres/data-checks.js';
import { psqlLine } from './shell-export.js';
import type { Action, ActionContext } from './types.js';

export interface DataCheckInput {
  kind: 'amcheck' | 'read' | 'counts' | 'sentinel';
  /** amcheck, read: comma-separated databases, or all. */
  databases?: string;
  /** counts: comma-separated database.schema.table (database.table: in public). */
  tables?: string;
  /** sentinel: the value drill_sentinel registered on the primary, as JSON ("" when it wrote none). */
  sentinel?: string;
  /** sentinel: the recovery target the copy was recovered to. */
  target?: { type: string; value?: string; exclusive?: boolean | string };
}

function connector(ctx: ActionContext, hostName?: string): Connect {
  return (database) => ctx.connectPostgres({ database, ...(hostName ? { hostName } : {}) });
}

async function withClient<T>(connect: Connect, database: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = await connect(database);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function parseSentinel(text: string | undefined): Sentinel | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<Sentinel> & { failed?: boolean; skipped?: boolean };
    return v && typeof v.id === 'string' && v.failed !== true && v.skipped !== true ? (v as Sentinel) : undefined;
  } catch {
    return undefined;
  }
}

async function runChecks(ctx: ActionContext, input: DataCheckInput): Promise<DataCheckResult[]> {
  const copy = connector(ctx);
  switch (input.kind) {
    case 'amcheck':
    case 'read': {
      const out: DataCheckResult[] = [];
      let databases: string[];
      try {
        databases = await chosenDatabases(copy, input.databases ?? '');
      } catch (e) {
        return [{ name: input.kind, kind: input.kind, status: 'could-not-run', detail: `the databases could not be listed: ${(e as Error).message}` }];
      }
      for (const db of databases) out.push(await (input.kind === 'amcheck' ? amcheckDatabase(copy, db) : readDatabase(copy, db)));
      return out;
    }
    case 'counts': {
      const tables = splitList(input.tables);
      const primary = Object.values(ctx.hosts).find((h) => h.role === 'primary');
      const inCopy = await countTables(copy, tables);
      const onPrimary = primary && (await ctx.factsOf(primary.name)).running ? await countTables(connector(ctx, primary.name), tables) : undefined;
      return compareCounts(inCopy, onPrimary);
    }
    case 'sentinel': {
      const sentinel = parseSentinel(input.sentinel);
      const t = input.target ?? { type: 'latest' };
      const target = { type: t.type, value: t.value ?? '', exclusive: t.exclusive === true || t.exclusive === 'true' };
      return [await withClient(copy, sentinel?.database ?? 'postgres', (c) => checkSentinel(c, sentinel, target))];
    }
  }
}

export const dataCheckAction: Action<DataCheckInput> = {
  name: 'data_check',
  connects: true,
  // Reads the drill copy (amcheck's extension lives only there): no fact of the host changes.
  changes: [],
  summary: 'Data checks on a restored drill copy: amcheck of every B-tree index, a full read of every table, row counts against the primary, the sentinel row.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['kind'],
    properties: {
      kind: { type: 'string', enum: ['amcheck', 'read', 'counts', 'sentinel'], description: 'Which check' },
      databases: { type: 'string', description: 'amcheck, read: comma-separated databases, or all (every database that accepts connections)' },
      tables: { type: 'string', description: 'counts: comma-separated database.schema.table (database.table for public)' },
      sentinel: { type: 'string', description: 'sentinel: what the drill_sentinel step registered on the primary, as JSON' },
      target: {
        type: 'object',
        additionalProperties: false,
        required: ['type'],
        description: 'sentinel: the recovery target of the copy',
        properties: { type: { type: 'string' }, value: { type: 'string' }, exclusive: { type: ['boolean', 'string'] } },
      },
    },
  },
  async check(ctx) {
    if (ctx.host.role !== 'drill') {
      throw new PgplayError({
        code: 'GUARD',
        message: `${ctx.host.name} has role ${ctx.host.role}: data checks run only on a drill copy (amcheck creates its extension in the databases it checks)`,
        hint: 'run the checks on a host with role drill',
      });
    }
    // The checks only read the copy (amcheck's extension aside, on scratch): they run in apply, after the copy exists.
    return { changed: !ctx.checkMode, msg: ctx.checkMode ? 'would check the restored copy' : undefined };
  },
  async exportShell(ctx, input) {
    // By hand, amcheck is the check worth running; the others are pgplay's comparisons.
    if (input.kind !== 'amcheck') return { comments: [`data check ${input.kind} of the restored copy: pgplay compares it; nothing to run by hand`] };
    const sql =
      "CREATE EXTENSION IF NOT EXISTS amcheck; SELECT c.oid::regclass, bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready";
    const databases = splitList(input.databases).filter((d) => d !== 'all');
    return { comments: ['amcheck of every B-tree index in the restored copy (stops at the first corrupt one)'], commands: (databases.length ? databases : ['postgres']).map((database) => psqlLine(ctx.host, sql, { database })) };
  },
  async apply(ctx, input) {
    const checks = await runChecks(ctx, input);
    const failed = checks.filter((c) => c.status === 'failed');
    const notRun = checks.filter((c) => c.status === 'could-not-run');
    const msg =
      checks.length === 0
        ? `no ${input.kind} check was asked for`
        : failed.length + notRun.length === 0
          ? `${checks.length} ${input.kind} check${checks.length === 1 ? '' : 's'} passed`
          : [...failed, ...notRun].map((c) => `${c.name}: ${c.status.toUpperCase()}: ${c.detail}`).join('; ');
    // Nothing was changed that outlives the copy: the step is ok, and the verdict judges what it found.
    return { changed: false, msg, data: { kind: input.kind, checks, failing: failed.length, could_not_run: notRun.length } };
  },
};

export default dataCheckAction;
