/**
 * The drill's measures (src/report/drill-measures.ts): the RPO in bytes and seconds, the server log's
 * time, the targets met or missed, and how data checks and targets appear as evidence (JUnit cases).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadInventory } from '../../src/load/inventory.js';
import { parseCacheIn } from '../../src/load/parse-cache.js';
import { yamlParseCount } from '../../src/load/yaml.js';
import { yamlLib } from '../../src/load/yaml-lib.js';
import { drillEvidence } from '../../src/report/drill-evidence.js';
import { drillTargets, inventoryDrillSettings, logTime, rpoOf } from '../../src/report/drill-measures.js';
import type { DrillReport } from '../../src/report/drill.js';
import { formatDrillJunit } from '../../src/report/drill-junit.js';
import { compareCounts } from '../../src/postgres/data-checks.js';

describe('RPO', () => {
  it('is zero when the copy replayed past the primary\'s position at the start, whatever the last commit\'s age', () => {
    expect(rpoOf({ lsn: '0/C000060', at: '2026-05-01 03:00:00+00' }, { replay_lsn: '0/C0000D8' }, '2026-05-01 02:50:00+00', null)).toMatchObject({ bytes: 0, seconds: 0 });
  });
  it('is the WAL and the time between the copy\'s recovery point and the start when the copy stopped before it', () => {
    const r = rpoOf({ lsn: '0/D000000', at: '2026-05-01 03:00:00.5+00' }, { replay_lsn: '0/C000000' }, '2026-05-01 02:58:00.25+00', null);
    expect(r).toEqual({ primary_lsn: '0/D000000', primary_time: '2026-05-01 03:00:00.5+00', copy_lsn: '0/C000000', copy_time: '2026-05-01 02:58:00.25+00', bytes: 16777216, seconds: 120.25 });
  });
  it('falls back to where redo ended, and is unknown without either position', () => {
    expect(rpoOf({ lsn: '1/0', at: '2026-05-01 03:00:00+00' }, {}, null, '0/FF000000').bytes).toBe(16777216);
    expect(rpoOf(undefined, { replay_lsn: '0/1' }, null, null)).toMatchObject({ bytes: null, seconds: null });
  });
});

describe('the server log\'s time', () => {
  it('reads %m and %t prefixes in UTC or with an offset; an ambiguous zone name gives none', () => {
    expect(logTime('2026-05-01 03:00:03.100 UTC [9] LOG:  archive recovery complete')).toBe(Date.parse('2026-05-01T03:00:03.100Z'));
    expect(logTime('2026-05-01 05:00:03 +02 [9] LOG:  x')).toBe(Date.parse('2026-05-01T03:00:03Z'));
    expect(logTime('2026-05-01 05:00:03 CEST [9] LOG:  x')).toBeUndefined();
    expect(logTime('LOG:  no prefix')).toBeUndefined();
  });
});

describe('targets', () => {
  it('met, missed, or not measured (never met)', () => {
    const rpo = { primary_lsn: null, primary_time: null, copy_lsn: null, copy_time: null, bytes: 10, seconds: 90 };
    const t = drillTargets({ rto: { text: '15m', ms: 900_000 }, rpo: { text: '1m', ms: 60_000 } }, 120_000, rpo);
    expect(t).toEqual({ rto: { target: '15m', target_ms: 900_000, measured_ms: 120_000, met: true }, rpo: { target: '1m', target_ms: 60_000, measured_ms: 90_000, met: false } });
    expect(drillTargets({ rto: { text: '15m', ms: 900_000 } }, null, rpo)).toEqual({ rto: { target: '15m', target_ms: 900_000, measured_ms: null, met: null }, rpo: null });
  });
  it('come from the inventory the run used, through the parse cache the run filled: no YAML parsed again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgplay-targets-'));
    try {
      const file = join(dir, 'inv.yml');
      await writeFile(file, 'cluster: c\npostgres: { version: 16 }\nhosts:\n  db1: { address: 10.0.0.1, role: primary, pgdata: /var/lib/postgresql/16/main }\ndrills: { rto: 15m, rpo: 90s, rtoRegression: 50 }\n');
      const cache = parseCacheIn(join(dir, 'state'), 'test-build');
      await loadInventory(file, cache);
      const bare = vi.spyOn(yamlLib(), 'parse');
      const parsed = yamlParseCount();
      try {
        expect(await inventoryDrillSettings(file, cache)).toEqual({ rto: { text: '15m', ms: 900_000 }, rpo: { text: '90s', ms: 90_000 }, rtoRegression: 0.5 });
        expect(yamlParseCount() - parsed + bare.mock.calls.length).toBe(0);
      } finally {
        bare.mockRestore();
      }
      // Without the cache's entry the file is read all the same; a file gone since gives no setting.
      expect(await inventoryDrillSettings(file, undefined)).toEqual({ rto: { text: '15m', ms: 900_000 }, rpo: { text: '90s', ms: 90_000 }, rtoRegression: 0.5 });
      expect(await inventoryDrillSettings(join(dir, 'gone.yml'), cache)).toEqual({});
      // Each setting on its own: an rto edited since into something that does not read leaves rpo and rtoRegression.
      await writeFile(file, 'cluster: c\ndrills: { rto: soon, rpo: 90s, rtoRegression: 50 }\n');
      expect(await inventoryDrillSettings(file, cache)).toEqual({ rpo: { text: '90s', ms: 90_000 }, rtoRegression: 0.5 });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('row counts against the primary', () => {
  it('pass when equal, fail when the copy differs or cannot read the table, could not run without the primary\'s count', () => {
    const checks = compareCounts({ 'app.public.a': { rows: 5 }, 'app.public.b': { rows: 4 }, 'app.public.c': { error: 'relation "c" does not exist' }, 'app.public.d': { rows: 1 } }, { 'app.public.a': { rows: 5 }, 'app.public.b': { rows: 5 }, 'app.public.c': { rows: 2 } });
    expect(checks.map((c) => c.status)).toEqual(['passed', 'failed', 'failed', 'could-not-run']);
    expect(checks[1]!.detail).toBe("4 rows in the copy, 5 on the primary now");
  });
});

describe('data checks and targets as evidence', () => {
  it('each data check and target is a JUnit case: failed a failure, could-not-run an error, never a pass', () => {
    const report = {
      run: { id: 'r1', cluster: 'main', started: '2026-05-01T03:00:00.000Z' },
      host: 'drill1',
      target: { type: 'latest', value: null },
      backup: { set: 's', type: 'full', reason: null },
      target_reached: true,
      proof: [],
      problems: [],
      archive: { reached_repository: true, archiver_failing: false, wal_at_start: 'w', repository_max: 'w' },
      recovery_point: { last_transaction: 't', replayed_to: null },
      rto: { ms: 5000, phases: { restore_ms: 3000, recovery_ms: 1500, first_query_ms: 500, bytes_restored: 3145728, restore_bytes_per_s: 1048576 } },
      rpo: { primary_lsn: '0/1', primary_time: 'x', copy_lsn: '0/2', copy_time: 't', bytes: 0, seconds: 0 },
      targets: { rto: { target: '1s', target_ms: 1000, measured_ms: 5000, met: false }, rpo: { target: '5m', target_ms: 300000, measured_ms: 0, met: true } },
      checks: [],
      data_checks: [
        { name: 'amcheck app', kind: 'amcheck', status: 'failed', detail: '1 of 3 B-tree indexes in app failed; first: idx: invalid page', relation: 'idx' },
        { name: 'amcheck other', kind: 'amcheck', status: 'could-not-run', detail: 'amcheck is not available in other' },
        { name: 'sentinel', kind: 'sentinel', status: 'passed', detail: 'found' },
      ],
      teardown: 'removed',
    } as unknown as DrillReport;
    const items = Object.fromEntries(drillEvidence(report).map((i) => [i.name, i]));
    expect(items['RTO measured']!.detail).toBe('5.0 s from restore start to the first query: restore 3.0 s (3.0 MB, 1.0 MB/s), recovery 1.5 s, first query 500 ms');
    expect(items['RTO target 1s']).toMatchObject({ status: 'failed', detail: '5.0 s against 1s: MISSED' });
    expect(items['RPO target 5m']).toMatchObject({ status: 'passed', detail: '0.0 s against 5m: met' });
    expect([items['amcheck app']!.status, items['amcheck other']!.status, items.sentinel!.status]).toEqual(['failed', 'could-not-run', 'passed']);
    const junit = formatDrillJunit(report);
    expect(junit).toMatch(/name="amcheck app">\n\s+<failure message="1 of 3 B-tree indexes in app failed; first: idx: invalid page" type="failed">/);
    expect(junit).toMatch(/name="amcheck other">\n\s+<error message="amcheck is not available in other" type="could-not-run">/);
  });
});

describe('drills.rto and drills.rpo in the inventory', () => {
  it('a duration that does not parse is a schema error at its line and column (exit 2)', async () => {
    const { runCli } = await import('../support/cli.js');
    const dir = await mkdtemp(join(tmpdir(), 'pgplay-targets-'));
    try {
      const file = join(dir, 'inventory.yml');
      await writeFile(file, `cluster: c\npostgres: { version: 15 }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: /x }\ndrills:\n  rto: 15m\n  rpo: five minutes\n`);
      const r = await runCli(['validate', file]);
      expect(r.exitCode).toBe(2);
      expect(r.stdout + r.stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:7:8`));
      expect(r.stdout + r.stderr).toMatch(/duration/);
      await writeFile(file, `cluster: c\npostgres: { version: 15 }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: /x }\ndrills:\n  rto: 15m\n  rpo: 5m\n`);
      expect((await runCli(['validate', file])).exitCode).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('where the data checks and the sentinel may run', () => {
  it('data_check refuses any host but a drill host, and drill_sentinel any host but the primary (GUARD, exit 3)', async () => {
    const { dataCheckAction } = await import('../../src/actions/data-check.js');
    const { drillSentinelAction } = await import('../../src/actions/drill-sentinel.js');
    const ctx = (role: string) => ({ host: { name: 'h1', role }, checkMode: true }) as unknown as Parameters<typeof dataCheckAction.check>[0];
    for (const role of ['primary', 'standby']) {
      await expect(dataCheckAction.check(ctx(role), { kind: 'amcheck', databases: 'app' })).rejects.toMatchObject({ code: 'GUARD', exitCode: 3, message: expect.stringContaining('data checks run only on a drill copy') });
    }
    await expect(dataCheckAction.check(ctx('drill'), { kind: 'amcheck', databases: 'app' })).resolves.toMatchObject({ changed: false, msg: 'would check the restored copy' });
    for (const role of ['drill', 'standby']) {
      await expect(drillSentinelAction.check(ctx(role), {})).rejects.toMatchObject({ code: 'GUARD', exitCode: 3 });
    }
  });
});
