/**
 * The drill_sentinel action: just before a drill, a canary row on the primary (table
 * pgplay.drill_sentinel of one database, made on first use) with the bounds of its commit: the clock and
 * WAL position before the insert and after the commit, and its transaction id. The drill's sentinel
 * check (data_check kind sentinel) then proves the copy's recovery point: a drill to latest must find
 * the row, a drill to a target before it must not. Only the inventory's primary, running read-write.
 */
import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import type { Sentinel } from '../postgres/data-checks.js';
import { psqlLine } from './shell-export.js';
import type { Action } from './types.js';

export interface DrillSentinelInput {
  database?: string;
}

const DDL = `CREATE SCHEMA IF NOT EXISTS pgplay;
CREATE TABLE IF NOT EXISTS pgplay.drill_sentinel (
  id text PRIMARY KEY,
  written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE pgplay.drill_sentinel IS 'pgplay restore drills: one canary row per drill, found in a copy recovered past its commit'`;

async function write(client: Client, database: string): Promise<Sentinel> {
  await client.query(DDL);
  await client.query('BEGIN');
  try {
    const before = await client.query<{ written_at: string; lsn_before: string; xid: string }>(
      `SELECT clock_timestamp()::text AS written_at, pg_current_wal_insert_lsn()::text AS lsn_before, (txid_current() % 4294967296)::text AS xid`,
    );
    const row = await client.query<{ id: string }>(`INSERT INTO pgplay.drill_sentinel (id) VALUES (md5(random()::text || clock_timestamp()::text)) RETURNING id`);
    await client.query('COMMIT');
    const after = await client.query<{ committed_by: string; lsn_after: string }>(`SELECT clock_timestamp()::text AS committed_by, pg_current_wal_lsn()::text AS lsn_after`);
    return { id: row.rows[0]!.id, database, ...before.rows[0]!, ...after.rows[0]! };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

export const drillSentinelAction: Action<DrillSentinelInput> = {
  name: 'drill_sentinel',
  connects: true,
  // One row in the primary's pgplay.drill_sentinel table: no fact of the host changes.
  changes: [],
  summary: "Writes the drill's canary row on the primary (pgplay.drill_sentinel) and registers the bounds of its commit.",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: { database: { type: 'string', default: 'postgres', description: 'The database that holds pgplay.drill_sentinel' } },
  },
  async check(ctx) {
    if (ctx.host.role !== 'primary') {
      throw new PgplayError({ code: 'GUARD', message: `${ctx.host.name} has role ${ctx.host.role}: the drill's sentinel is written only on the primary`, hint: 'run the step on the primary' });
    }
    return { changed: true, msg: ctx.checkMode ? 'would write a sentinel row in pgplay.drill_sentinel' : undefined };
  },
  async exportShell(ctx, input) {
    const sql = `${DDL.replace(/\n\s*/g, ' ')}; INSERT INTO pgplay.drill_sentinel (id) VALUES (md5(random()::text || clock_timestamp()::text)) RETURNING id, written_at`;
    return { comments: ["the drill's canary row: note its id and time; a copy recovered past it must hold it"], commands: [psqlLine(ctx.host, sql, { database: input.database ?? 'postgres' })] };
  },
  async apply(ctx, input) {
    const database = input.database ?? 'postgres';
    const client = await ctx.connectPostgres({ database });
    try {
      const s = await write(client, database);
      return { changed: true, msg: `sentinel ${s.id} committed between ${s.written_at} and ${s.committed_by}`, data: { ...s } };
    } catch (e) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `the sentinel could not be written in ${database}: ${(e as Error).message}`, cause: e });
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};

export default drillSentinelAction;
