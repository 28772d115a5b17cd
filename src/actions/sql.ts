import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import { inlineParams, psqlLine } from './shell-export.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface SqlInput {
  query: string;
  params?: unknown[];
  database?: string;
  /** Force read-only (true) or writing (false); by default SELECT/SHOW/WITH-without-DML/EXPLAIN are read-only. */
  read_only?: boolean;
  /** A read-only query; when its first column of the first row is true, the statement is not run. */
  unless?: string;
  unless_params?: unknown[];
  /** Expression over {rows, row_count, command}; writes default to changed, reads to unchanged. */
  changed_when?: string | boolean;
  /** Run outside a transaction (CREATE DATABASE, VACUUM, ALTER SYSTEM ...). Writes run in one by default. */
  autocommit?: boolean;
}

const READ_ONLY_START = /^\s*(select|show|explain|values|table|with)\b/i;
const DML = /\b(insert|update|delete|merge|truncate)\b/i;
// Functions that change server state although called from a SELECT. Check mode must never call them,
// so a SELECT that mentions one counts as a write (it still runs in apply, and read_only overrides).
const SIDE_EFFECT_FUNCTION =
  /\b(pg_switch_wal|pg_switch_xlog|pg_create_restore_point|pg_promote|pg_start_backup|pg_stop_backup|pg_backup_start|pg_backup_stop|pg_create_physical_replication_slot|pg_create_logical_replication_slot|pg_drop_replication_slot|pg_terminate_backend|pg_cancel_backend|pg_reload_conf|pg_rotate_logfile|pg_wal_replay_pause|pg_wal_replay_resume|pg_xlog_replay_pause|pg_xlog_replay_resume|setval|nextval|txid_current|pg_current_xact_id|pg_advisory_\w*lock\w*|pg_stat_reset\w*|lo_\w+|dblink_exec|pg_notify|set_config)\s*\(/i;

/** Conservative: only statements that cannot change anything are read-only (run even in check mode). */
export function isReadOnlyQuery(query: string): boolean {
  const q = stripComments(query);
  if (!READ_ONLY_START.test(q)) return false;
  if (/^\s*explain\b/i.test(q) && /\banalyze\b/i.test(q)) return false;
  if (DML.test(q) || SIDE_EFFECT_FUNCTION.test(q)) return false;
  if (/\binto\b/i.test(q)) return false; // SELECT ... INTO creates a table
  return true;
}

function stripComments(query: string): string {
  return query.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

async function withClient<T>(ctx: ActionContext, input: SqlInput, fn: (client: Client) => Promise<T>): Promise<T> {
  if (!ctx.facts.running) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `PostgreSQL is not running on ${ctx.host.name} (${ctx.host.pgdata ?? 'no pgdata'})`,
      hint: 'start it first (postgres: {state: started})',
    });
  }
  const client = await ctx.connectPostgres({ database: input.database });
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function resultData(res: { rows: unknown[]; rowCount: number | null; command: string }): Record<string, unknown> {
  return { rows: res.rows, row_count: res.rowCount ?? res.rows.length, command: res.command, first: res.rows[0] ?? null };
}

async function readOnly(client: Client, query: string, params: unknown[] | undefined) {
  await client.query('BEGIN READ ONLY');
  try {
    return await client.query({ text: query, values: params ?? [] });
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

function truthyFirstColumn(rows: Record<string, unknown>[]): boolean {
  const first = rows[0];
  if (!first) return false;
  const value = Object.values(first)[0];
  return value === true || value === 't' || value === 1 || value === '1' || value === 'true';
}

export const sqlAction: Action<SqlInput> = {
  name: 'sql',
  connects: true,
  // Whatever the SQL does is inside the server: no fact describes it.
  changes: [],
  summary: 'Runs a SQL statement on the host\'s PostgreSQL with bound parameters ($1, $2, ...); returns rows.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['query'],
    properties: {
      query: { type: 'string', description: 'The statement; values go in params as $1, $2, ... never interpolated.' },
      params: { type: 'array', description: 'Bound parameters for $1, $2, ...' },
      database: { type: 'string', default: 'postgres' },
      read_only: { type: 'boolean', description: 'Override the read-only detection.' },
      unless: { type: 'string', description: 'Read-only guard query: when its first value is true the statement is skipped.' },
      unless_params: { type: 'array' },
      changed_when: { type: ['string', 'boolean'], description: 'Expression over rows, row_count, command.' },
      autocommit: { type: 'boolean', default: false, description: 'Run outside a transaction block.' },
    },
  },
  // The detector alone decides here: `read_only: true` is the user's word, not proof enough to run under plan.
  readOnly(input) {
    return typeof input.query === 'string' && input.read_only !== false && isReadOnlyQuery(input.query);
  },
  async check(ctx, input) {
    const readOnlyQuery = input.read_only ?? isReadOnlyQuery(input.query);
    if (readOnlyQuery) {
      // Reads are safe in check mode too, so registered rows are available to later steps.
      return withClient(ctx, input, async (client) => {
        const res = await readOnly(client, input.query, input.params);
        return { changed: false, data: resultData(res) };
      });
    }
    if (input.unless) {
      const skip = await withClient(ctx, input, async (client) => truthyFirstColumn((await readOnly(client, input.unless!, input.unless_params)).rows));
      if (skip) return { changed: false, msg: 'unless query is true; nothing to do' };
    }
    if (input.changed_when === false) return { changed: !ctx.checkMode, msg: ctx.checkMode ? 'would run (reports no change)' : undefined };
    return { changed: true, msg: 'would run the statement' };
  },
  async exportShell(ctx, input) {
    const statement = inlineParams(input.query, input.params).replace(/\s+/g, ' ').trim();
    // A read is a check: the script shows it, and what it found at plan time, without running it.
    if (input.read_only ?? isReadOnlyQuery(input.query)) return { comments: [`check (database ${input.database ?? 'postgres'}): ${statement}`] };
    const db = { database: input.database };
    const run = psqlLine(ctx.host, statement, db);
    if (!input.unless) return { commands: [run] };
    const unless = inlineParams(input.unless, input.unless_params).replace(/\s+/g, ' ').trim();
    // The guard as pgplay runs it: the statement only when the unless query is not true.
    return { comments: [`unless: ${unless}`], commands: [`if [ "$(${psqlLine(ctx.host, unless, db)})" != t ]; then`, `  ${run}`, 'fi'] };
  },
  async apply(ctx, input) {
    return withClient(ctx, input, async (client): Promise<Outcome> => {
      let res;
      if (input.autocommit) {
        res = await client.query({ text: input.query, values: input.params ?? [] });
      } else {
        await client.query('BEGIN');
        try {
          res = await client.query({ text: input.query, values: input.params ?? [] });
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw sqlError(e);
        }
      }
      const data = resultData(res);
      const changed = input.changed_when === undefined ? true : evaluateCondition(input.changed_when, data);
      return { changed, data, msg: `${res.command} ${res.rowCount ?? ''}`.trim() };
    }).catch((e) => {
      throw sqlError(e);
    });
  },
};

function sqlError(e: unknown): PgplayError {
  if (e instanceof PgplayError) return e;
  const err = e as { message?: string; code?: string; position?: string };
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `SQL error${err.code ? ` ${err.code}` : ''}: ${err.message ?? String(e)}${err.position ? ` at character ${err.position}` : ''}`,
    cause: e,
  });
}

export default sqlAction;
