import { describe, expect, it } from 'vitest';
import { dumpName, dumpsIn, parseDumpName, retentionRemoves } from '../../src/postgres/dump-files.js';
import { planGlobals } from '../../src/postgres/globals-sql.js';
import { compareCounts } from '../../src/postgres/table-counts.js';

const DAY = 86_400_000;
const at = (iso: string) => new Date(iso);

describe('dump file names', () => {
  it('carry cluster, database and UTC start, and parse back whatever the database is called', () => {
    const n = dumpName('main', 'directory', 'app', at('2026-12-03T16:30:12.345Z'));
    expect(n).toBe('main-app-20261203T163012.345Z.dir');
    for (const db of ['my-db', 'Ünïcode db', 'a%b', 'x/y', 'globals']) {
      const name = dumpName('main-x', 'custom', db, at('2026-01-01T00:00:00.000Z'));
      expect(name).toMatch(/^main-x-[A-Za-z0-9_.%]+-20260101T000000\.000Z\.dump$/);
      expect(parseDumpName(name)).toMatchObject({ cluster: 'main-x', database: db, kind: 'custom', time: Date.UTC(2026, 0, 1) });
    }
    expect(parseDumpName(dumpName('main', 'globals', undefined, at('2026-01-01T00:00:00.000Z')))).toMatchObject({ kind: 'globals', database: undefined });
  });

  it('belong to their own cluster only, and are complete only with their checksum file', () => {
    const names = ['main-app-20260101T000000.000Z.dir', 'main-app-20260101T000000.000Z.dir.sha256', 'main-app-20260102T000000.000Z.dir.partial', 'main-x-app-20260103T000000.000Z.dir', 'main-app-20260104T000000.000Z.dir'];
    const found = dumpsIn(names, 'main');
    expect(found.map((d) => `${d.name}:${d.complete}:${d.partial}`)).toEqual([
      'main-app-20260104T000000.000Z.dir:false:false',
      'main-app-20260102T000000.000Z.dir:false:true',
      'main-app-20260101T000000.000Z.dir:true:false',
    ]);
  });
});

describe('retention', () => {
  const now = Date.UTC(2026, 5, 30);
  const complete = (db: string, daysAgo: number) => ({ ...parseDumpName(dumpName('main', 'directory', db, new Date(now - daysAgo * DAY)))!, complete: true, partial: false });

  it('keeps the newest N per database and removes complete dumps older than the maximum age', () => {
    const entries = [complete('app', 1), complete('app', 2), complete('app', 3), complete('shop', 1), complete('shop', 40)];
    const removed = retentionRemoves(entries, { keep: 2, maxAgeMs: 30 * DAY }, now).map((r) => r.entry.name);
    expect(removed).toEqual([entries[2]!.name, entries[4]!.name]);
  });

  it('never removes the newest complete dump, however old; an incomplete one never counts and goes unless this run writes it', () => {
    const old = complete('ghost', 400);
    const partial = { ...complete('app', 0), complete: false, partial: true };
    const mine = { ...complete('app', -1), complete: false, partial: true };
    const removed = retentionRemoves([old, partial, mine, complete('app', 5)], { keep: 1, maxAgeMs: DAY }, now, new Set([mine.name]));
    expect(removed.map((r) => r.entry.name)).toEqual([partial.name]);
  });
});

describe('globals restore plan', () => {
  const sql = [
    '\\restrict H0s0M2a6RJHfv3X4',
    '--',
    '-- Roles',
    '--',
    '',
    'CREATE ROLE app;',
    "ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';",
    'CREATE ROLE "New ""one""";',
    "ALTER ROLE \"New \"\"one\"\"\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:x$y:z';",
    "CREATE TABLESPACE fast OWNER app LOCATION '/srv/fast';",
    'GRANT pg_read_all_data TO app GRANTED BY postgres;',
    '\\unrestrict H0s0M2a6RJHfv3X4',
  ].join('\n');

  it('creates missing roles with their verifier, leaves the password of existing ones unless asked, and skips psql meta-commands', () => {
    const plan = planGlobals(sql, new Set(['app', 'postgres']), new Set(['fast']), false);
    expect(plan.created).toEqual(['New "one"']);
    expect(plan.passwordsKept).toEqual(['app']);
    expect(plan.tablespacesSkipped).toEqual(['fast']);
    expect(plan.statements).toEqual([
      'ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN;',
      'CREATE ROLE "New ""one""";',
      "ALTER ROLE \"New \"\"one\"\"\" WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:x$y:z';",
      'GRANT pg_read_all_data TO app GRANTED BY postgres;',
    ]);
    const asked = planGlobals(sql, new Set(['app']), new Set(), true);
    expect(asked.passwordsSet).toEqual(['app']);
    expect(asked.statements).toContain("ALTER ROLE app WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';");
  });
});

describe('row count comparison', () => {
  it('names every table that differs or is missing on one side', () => {
    expect(compareCounts({ 'public.a': 3, 'public.b': 2, 'public.c': 1 }, { 'public.a': 3, 'public.b': 0, 'public.d': 4 })).toEqual([
      { table: 'public.b', expected: 2, found: 0 },
      { table: 'public.c', expected: 1, found: undefined },
      { table: 'public.d', expected: undefined, found: 4 },
    ]);
  });
});
