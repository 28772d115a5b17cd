/**
 * Row counts per table: what a dump's manifest records (in the dump's own snapshot) and what a restore
 * is compared with. Counted are the tables whose rows pg_dump writes: ordinary tables and partitions
 * (relkind r; a partitioned parent holds no rows of its own), outside the system schemas and not
 * members of an extension (pg_dump leaves those out).
 */
import type { Client } from 'pg';

/** `schema.table` (both quoted as identifiers only where needed, as pg_restore -t names them) -> rows. */
export type TableCounts = Record<string, number>;

const TABLES = `
SELECT n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qualified
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2`;

export function tableKey(schema: string, name: string): string {
  return `${schema}.${name}`;
}

/** Counts every table in the client's current transaction (so in its snapshot, when it has one). */
export async function countTables(client: Client, only?: (schema: string, name: string) => boolean): Promise<TableCounts> {
  const tables = await client.query<{ schema: string; name: string; qualified: string }>(TABLES);
  const counts: TableCounts = {};
  for (const t of tables.rows) {
    if (only && !only(t.schema, t.name)) continue;
    const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t.qualified}`);
    counts[tableKey(t.schema, t.name)] = Number(r.rows[0]!.n);
  }
  return counts;
}

export interface CountDifference {
  table: string;
  expected?: number;
  found?: number;
}

/** Every table whose count differs, or that is only on one side. */
export function compareCounts(expected: TableCounts, found: TableCounts): CountDifference[] {
  const diffs: CountDifference[] = [];
  for (const table of [...new Set([...Object.keys(expected), ...Object.keys(found)])].sort()) {
    if (expected[table] !== found[table]) diffs.push({ table, expected: expected[table], found: found[table] });
  }
  return diffs;
}

export function describeDifference(d: CountDifference, where: string): string {
  if (d.found === undefined) return `${d.table}: ${d.expected} rows in the source, missing in ${where}`;
  if (d.expected === undefined) return `${d.table}: ${d.found} rows in ${where}, not in the source's dump`;
  return `${d.table}: ${d.found} rows in ${where}, ${d.expected} in the source`;
}
