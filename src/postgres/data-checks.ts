/**
 * Data checks of a restored copy (pitr-drill.yml): each a named check that passed, failed or could not
 * run. A check that could not run is never a pass: the drill's verdict counts it as missing evidence.
 *
 * - amcheck: bt_index_check(index, heapallindexed => true) on every B-tree index of a database (the
 *   extension is created in the copy, which is scratch; the action refuses any host but a drill host).
 * - read: every table read in full, each row turned to text (every heap block read once and every
 *   TOASTed value fetched, as pg_dump to /dev/null would); the first relation that cannot be read is named.
 * - counts: row counts of chosen tables, compared with the primary's counts at the drill's start.
 * - sentinel: the canary row pgplay wrote on the primary just before the drill, found in the copy exactly
 *   when the recovery target lies after its commit.
 */
import type { Client } from 'pg';

export type DataCheckStatus = 'passed' | 'failed' | 'could-not-run';

export interface DataCheckResult {
  /** Stable name: "amcheck app", "read app", "rows app.public.accounts", "sentinel". */
  name: string;
  kind: 'amcheck' | 'read' | 'counts' | 'sentinel';
  status: DataCheckStatus;
  detail: string;
  database?: string;
  /** The first relation that failed (amcheck, read): what an operator looks at first. */
  relation?: string;
  /** Every relation that failed, with PostgreSQL's error. */
  failures?: Array<{ relation: string; error: string }>;
}

/** Opens a client on one database of the host's server (the caller's connectPostgres). */
export type Connect = (database: string) => Promise<Client>;

const message = (e: unknown) => ((e as { message?: string }).message ?? String(e)).trim();

export function splitList(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** "all" is every database that accepts connections (template0 never does); else the list given. */
export async function chosenDatabases(connect: Connect, spec: string): Promise<string[]> {
  const names = splitList(spec);
  if (!(names.length === 1 && names[0] === 'all')) return names;
  const client = await connect('postgres');
  try {
    const r = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname');
    return r.rows.map((x) => x.datname);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs fn with a client on database, or answers could-not-run with why it could not connect. */
async function onDatabase(connect: Connect, database: string, name: string, kind: DataCheckResult['kind'], fn: (c: Client) => Promise<DataCheckResult>): Promise<DataCheckResult> {
  let client: Client;
  try {
    client = await connect(database);
  } catch (e) {
    return { name, kind, database, status: 'could-not-run', detail: `cannot connect to database ${database}: ${message(e)}` };
  }
  try {
    await client.query('SET statement_timeout = 0');
    return await fn(client);
  } catch (e) {
    return { name, kind, database, status: 'could-not-run', detail: message(e) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Each relation checked in its own statement, so one failure neither hides nor stops the others. In
 * sql, $REL is the relation as a regclass value, $NAME as a name in a FROM clause (regclass's text
 * output, quoted and schema-qualified as needed in this session).
 */
async function eachRelation(client: Client, relations: string[], sql: string): Promise<Array<{ relation: string; error: string }>> {
  const failures: Array<{ relation: string; error: string }> = [];
  for (const relation of relations) {
    try {
      await client.query(sql.replace('$REL', quoteRegclass(relation)).replace('$NAME', relation));
    } catch (e) {
      failures.push({ relation, error: message(e) });
    }
  }
  return failures;
}

/** A regclass text (already quoted by PostgreSQL's regclass output) as a literal cast back to regclass. */
function quoteRegclass(relation: string): string {
  return `'${relation.replace(/'/g, "''")}'::regclass`;
}

function judged(name: string, kind: DataCheckResult['kind'], database: string, checked: number, what: string, failures: Array<{ relation: string; error: string }>): DataCheckResult {
  if (failures.length === 0) return { name, kind, database, status: 'passed', detail: `${checked} ${what} checked in ${database}` };
  const first = failures[0]!;
  return {
    name,
    kind,
    database,
    status: 'failed',
    relation: first.relation,
    failures,
    detail: `${failures.length} of ${checked} ${what} in ${database} failed; first: ${first.relation}: ${first.error}`,
  };
}

export async function amcheckDatabase(connect: Connect, database: string): Promise<DataCheckResult> {
  const name = `amcheck ${database}`;
  return onDatabase(connect, database, name, 'amcheck', async (client) => {
    try {
      await client.query('CREATE EXTENSION IF NOT EXISTS amcheck');
    } catch (e) {
      return { name, kind: 'amcheck', database, status: 'could-not-run', detail: `amcheck is not available in ${database}: ${message(e)}` };
    }
    // Temporary indexes belong to other sessions; an invalid or unready index (a failed CREATE INDEX
    // CONCURRENTLY) holds nothing to check.
    const r = await client.query<{ name: string }>(
      `SELECT c.oid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
       WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisvalid AND i.indisready ORDER BY c.oid`,
    );
    const indexes = r.rows.map((x) => x.name);
    const failures = await eachRelation(client, indexes, 'SELECT bt_index_check($REL, true)');
    return judged(name, 'amcheck', database, indexes.length, 'B-tree indexes', failures);
  });
}

export async function readDatabase(connect: Connect, database: string): Promise<DataCheckResult> {
  const name = `read ${database}`;
  return onDatabase(connect, database, name, 'read', async (client) => {
    // Tables and populated materialized views, catalogs included; ONLY: each partition is read as itself.
    const r = await client.query<{ name: string }>(
      `SELECT c.oid::regclass::text AS name FROM pg_class c WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
       AND (c.relkind <> 'm' OR c.relispopulated) ORDER BY c.oid`,
    );
    const tables = r.rows.map((x) => x.name);
    // row::text runs every column's output function: every TOASTed value is fetched and decompressed.
    const failures = await eachRelation(client, tables, 'SELECT count(*), sum(length(t::text)) FROM ONLY $NAME AS t');
    return judged(name, 'read', database, tables.length, 'tables', failures);
  });
}

/** A table as database.schema.table (or database.table, in public). */
export function parseTable(spec: string): { database: string; schema: string; table: string } | undefined {
  const parts = spec.split('.');
  if (parts.length === 2) return { database: parts[0]!, schema: 'public', table: parts[1]! };
  if (parts.length === 3) return { database: parts[0]!, schema: parts[1]!, table: parts[2]! };
  return undefined;
}

/** Row counts per table (database.schema.table); a table that cannot be counted has its error instead. */
export async function countTables(connect: Connect, tables: string[]): Promise<Record<string, { rows?: number; error?: string }>> {
  const out: Record<string, { rows?: number; error?: string }> = {};
  for (const spec of tables) {
    const t = parseTable(spec);
    if (!t) {
      out[spec] = { error: 'expected database.schema.table or database.table' };
      continue;
    }
    const key = `${t.database}.${t.schema}.${t.table}`;
    try {
      const client = await connect(t.database);
      try {
        const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quoteIdent(t.schema)}.${quoteIdent(t.table)}`);
        out[key] = { rows: Number(r.rows[0]!.n) };
      } finally {
        await client.end().catch(() => undefined);
      }
    } catch (e) {
      out[key] = { error: message(e) };
    }
  }
  return out;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** The copy's counts against the primary's, read when the check runs (so only tables nobody writes during the drill): one check per table. */
export function compareCounts(copy: Record<string, { rows?: number; error?: string }>, primary: Record<string, { rows?: number; error?: string }> | undefined): DataCheckResult[] {
  return Object.entries(copy).map(([table, got]): DataCheckResult => {
    const name = `rows ${table}`;
    const database = table.split('.')[0]!;
    const base = { name, kind: 'counts' as const, database, relation: table };
    const want = primary?.[table];
    if (!want || want.rows === undefined) return { ...base, status: 'could-not-run', detail: `the primary's count of ${table} is unknown${want?.error ? `: ${want.error}` : ''}` };
    if (got.rows === undefined) return { ...base, status: 'failed', detail: `${table} cannot be read in the copy: ${got.error ?? 'unknown error'} (the primary has ${want.rows} rows)` };
    return got.rows === want.rows
      ? { ...base, status: 'passed', detail: `${got.rows} rows, as on the primary` }
      : { ...base, status: 'failed', detail: `${got.rows} rows in the copy, ${want.rows} on the primary now` };
  });
}

/** The canary row written on the primary (action drill_sentinel): its id and the bounds of its commit. */
export interface Sentinel {
  id: string;
  database: string;
  /** clock_timestamp() before the insert, and after its commit: the commit lies between. */
  written_at: string;
  committed_by: string;
  /** WAL insert position before the insert, and the WAL position after the commit. */
  lsn_before: string;
  lsn_after: string;
  /** The inserting transaction's id (32 bits, as recovery_target_xid takes it). */
  xid: string;
}

export interface RecoveryTarget {
  type: string;
  value: string;
  exclusive: boolean;
}

/**
 * Whether a copy recovered to the target must hold the sentinel: true, false, or undefined when the
 * target falls between the bounds of its commit (then no answer is honest).
 */
export async function sentinelExpected(client: Client, s: Sentinel, target: RecoveryTarget): Promise<boolean | undefined> {
  switch (target.type) {
    case 'latest':
      return true;
    // The backup set ended before the drill started, and a named restore point the drill's target check
    // found existed before the sentinel was written.
    case 'immediate':
    case 'name':
      return false;
    case 'time': {
      const r = await client.query<{ before: boolean; after: boolean }>('SELECT $1::timestamptz < $2::timestamptz AS before, $1::timestamptz > $3::timestamptz AS after', [target.value, s.written_at, s.committed_by]);
      const { before, after } = r.rows[0]!;
      // An inclusive time target replays a commit at exactly the target; an exclusive one does not.
      return before ? false : after || (!target.exclusive && target.value === s.committed_by) ? true : undefined;
    }
    case 'lsn': {
      const r = await client.query<{ before: boolean; after: boolean }>('SELECT $1::pg_lsn < $2::pg_lsn AS before, $1::pg_lsn >= $3::pg_lsn AS after', [target.value, s.lsn_before, s.lsn_after]);
      const { before, after } = r.rows[0]!;
      return before ? false : after ? true : undefined;
    }
    case 'xid': {
      const t = BigInt(target.value);
      const x = BigInt(s.xid);
      if (t < x) return false;
      if (t > x) return undefined; // a later transaction may have committed before the sentinel's
      return !target.exclusive;
    }
    default:
      return undefined;
  }
}

export async function checkSentinel(client: Client, s: Sentinel | undefined, target: RecoveryTarget): Promise<DataCheckResult> {
  const base = { name: 'sentinel', kind: 'sentinel' as const };
  if (!s) return { ...base, status: 'could-not-run', detail: 'no sentinel was written on the primary before the drill' };
  const expected = await sentinelExpected(client, s, target);
  const table = await client.query<{ t: string | null }>("SELECT to_regclass('pgplay.drill_sentinel')::text AS t");
  const found = table.rows[0]!.t !== null && (await client.query('SELECT 1 FROM pgplay.drill_sentinel WHERE id = $1', [s.id])).rowCount! > 0;
  const what = `the sentinel ${s.id} (committed between ${s.written_at} and ${s.committed_by}, WAL ${s.lsn_before}..${s.lsn_after}) is ${found ? 'in' : 'absent from'} the copy`;
  if (expected === undefined) return { ...base, database: s.database, status: 'could-not-run', detail: `${what}; the target ${target.type} ${target.value} cannot be placed before or after its commit` };
  return {
    ...base,
    database: s.database,
    status: found === expected ? 'passed' : 'failed',
    detail: `${what}; a recovery to ${target.type}${target.value ? ` ${target.value}` : ''} must ${expected ? 'find' : 'not find'} it`,
  };
}
