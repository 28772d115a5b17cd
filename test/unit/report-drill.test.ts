import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import type { JournalRun } from '../../src/journal/reader.js';
import type { RegisteredRecord } from '../../src/journal/types.js';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Playbook } from '../../src/model/playbook.js';
import type { DrillReportOutputs } from '../../src/model/report.js';
import { buildDrillReport as buildWith, formatDrillReport, parseChecks } from '../../src/report/drill.js';
import { drillReportPaths } from '../../src/report/drill-files.js';

// The report pitr-drill.yml declares: the test reads what the shipped playbook says feeds each field.
const DECLARED = (parse(readFileSync('playbooks/pitr-drill.yml', 'utf8')) as Playbook).report!;
const buildDrillReport = (run: JournalRun) => buildWith(run, DECLARED.outputs as DrillReportOutputs);
/** The steps of pitr-drill.yml that register the values (the RTO runs from the restore step's start to the ready step's ok). */
const STEP_OF: Record<string, string> = { drill_restore_target: 'restore-target', drill_restore_latest: 'restore-latest', drill_ready: 'ready' };

const T0 = '2026-05-01T03:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();

const LOG_OK = [
  '2026-05-01 03:00:02.100 UTC [9] LOG:  starting point-in-time recovery to "before-drop"',
  '2026-05-01 03:00:02.900 UTC [9] LOG:  recovery stopping at restore point "before-drop", time 2026-05-01 02:59:10.5+00',
  '2026-05-01 03:00:02.900 UTC [9] LOG:  last completed transaction was at log time 2026-05-01 02:59:10.25+00',
  '2026-05-01 03:00:03.000 UTC [9] LOG:  selected new timeline ID: 2',
  '2026-05-01 03:00:03.100 UTC [9] LOG:  archive recovery complete',
].join('\n');

const CHECKS_OK =
  'psql:<stdin>:20: NOTICE:  pgplay-check {"n" : 1, "sql" : "SELECT count(*) FROM t", "expect" : "1", "got" : "1", "error" : null, "ok" : true}\n' +
  'psql:<stdin>:20: NOTICE:  pgplay-check {"n" : 2, "sql" : "SELECT x FROM t", "expect" : "a", "got" : "b", "error" : null, "ok" : false}\n' +
  'psql:<stdin>:20: NOTICE:  pgplay-checks {"total" : 2, "failed" : 1}';

function reg(name: string, value: Record<string, unknown>, host = 'drill1'): RegisteredRecord {
  return { type: 'registered', step: STEP_OF[name] ?? name, host, handler: false, name, value: { changed: false, failed: false, skipped: false, msg: '', ...value } };
}

const ARCHIVER_OK = { archived_count: 12, last_archived_wal: '00000001000000000000000C', last_archived_time: '2026-05-01 03:00:00.5+00', failed_count: 0, last_failed_wal: null, last_failed_time: null, failing: false };

interface Over {
  proof?: string;
  checks?: string;
  ready?: Record<string, unknown>;
  keep?: boolean;
  params?: Record<string, unknown>;
  archiver?: Record<string, unknown>;
  archiveCheck?: Record<string, unknown>;
  repositoryMax?: string;
  point?: Record<string, unknown>;
  end?: Partial<Extract<RunEvent, { type: 'run-end' }>>;
  drop?: string[];
}

function drillRun(over: Over = {}): JournalRun {
  const events: RunEvent[] = [
    { type: 'step-start', step: 'restore-target', name: 'Restore', hosts: ['drill1'], handler: false, time: at(1000) },
    { type: 'step-result', step: 'restore-target', name: 'Restore', host: 'drill1', status: 'changed', handler: false, attempts: 1, durationMs: 1000, time: at(2000) },
    {
      type: 'step-result', step: 'ready', name: 'ready', host: 'drill1', status: over.ready?.failed ? 'failed' : 'ok', handler: false,
      attempts: 1, durationMs: 10, time: at(4500),
    },
    { type: 'run-end', runId: 'r1', status: 'ok', exitCode: 0, recap: {}, durationMs: 6000, time: at(6000), ...over.end } as RunEvent,
  ];
  return {
    file: '/state/runs/r1.jsonl',
    header: {
      type: 'journal', version: 1, runId: '20260501T030000-abcdef', playbook: '/p/pitr-drill.yml', playbookSha256: 'x', inventory: '/i.yml',
      cluster: 'main', params: { target: 'name', target_value: 'before-drop', keep: over.keep ?? false, checks: '[{"sql":"SELECT count(*) FROM t","expect":"1"}]', ...over.params }, check: false, options: {},
      git: null, resumeOf: null, pid: 1, hostname: 'h', user: 'root', started: T0,
    },
    events,
    registered: [
      reg('drill_wal_start', { rows: [{ lsn: '0/C000060', wal: '00000001000000000000000C', at: '2026-05-01 03:00:00+00' }] }, 'db1'),
      reg('drill_archive_check', over.archiveCheck ?? { wal_segment: '00000001000000000000000C' }, 'bk1'),
      reg('drill_archiver', { rows: [{ ...ARCHIVER_OK, ...over.archiver }] }, 'db1'),
      reg('drill_repository', { archive_max: over.repositoryMax ?? '00000001000000000000000C' }, 'bk1'),
      reg('drill_pgdata', { changed: true }),
      reg('drill_restore_latest', { skipped: true }),
      reg('drill_restore_target', { changed: true, set: '20260501-010000F', backup_type: 'full', recovery_start: '2026-05-01 01:00:00', backup: { size: 52428800 } }),
      reg('drill_start', { changed: true }),
      reg('drill_ready', over.ready ?? { rc: 0 }),
      reg('drill_proof', { rc: 0, stdout: over.proof ?? LOG_OK }),
      reg('drill_point', over.point ?? { rows: [{ last_transaction: '2026-05-01 02:59:10.25+00', timeline: 2, replay_lsn: '0/C0000D8' }] }),
      reg('drill_checks', { rc: 0, stderr: over.checks ?? CHECKS_OK }),
      reg('drill_teardown', over.keep ? { skipped: true } : { changed: true }),
    ].filter((r) => !(over.drop ?? []).includes(r.name)),
    end: events[3] as Extract<RunEvent, { type: 'run-end' }>,
    status: 'ok',
    counts: { ok: 0, changed: 0, skipped: 0, failed: 0 },
  };
}

describe('drill report', () => {
  it('is undefined for a run that registered no drill values', () => {
    expect(buildDrillReport({ ...drillRun(), registered: [] })).toBeUndefined();
  });

  it('reads the target proof, RTO, recovery point and each check from the journal', () => {
    const r = buildDrillReport(drillRun())!;
    expect(r).toMatchObject({
      kind: 'pgplay-drill-report',
      status: 'failed',
      host: 'drill1',
      target: { type: 'name', value: 'before-drop' },
      backup: { set: '20260501-010000F', type: 'full', recovery_start: '2026-05-01 01:00:00' },
      target_reached: true,
      rto: { ms: 3500, from: at(1000), to: at(4500) },
      recovery_point: { last_transaction: '2026-05-01 02:59:10.25+00', source: 'log', restore_point_time: '2026-05-01 02:59:10.5+00' },
      timeline: 2,
      teardown: 'removed',
    });
    expect(r.checks).toEqual([
      { n: 1, sql: 'SELECT count(*) FROM t', expect: '1', got: '1', error: null, ok: true },
      { n: 2, sql: 'SELECT x FROM t', expect: 'a', got: 'b', error: null, ok: false },
    ]);
    expect(r.problems).toEqual(['check 2 (SELECT x FROM t) returned b, expected a']);
  });

  it('a log without "recovery stopping" means the target was not reached', () => {
    const log = [
      'LOG:  starting point-in-time recovery to "gone"',
      'FATAL:  recovery ended before configured recovery target was reached',
    ].join('\n');
    const r = buildDrillReport(drillRun({ proof: log, ready: { failed: true, msg: '/bin/sh exited with rc 1: PostgreSQL stopped before recovery ended' }, checks: '' }))!;
    expect(r.target_reached).toBe(false);
    expect(r.rto.ms).toBeNull();
    expect(r.problems).toEqual([
      'the restored copy was not promoted: /bin/sh exited with rc 1: PostgreSQL stopped before recovery ended',
      'recovery ended before configured recovery target was reached',
      '1 of 1 requested check did not run',
    ]);
    expect(r.status).toBe('failed');
  });

  // Finding 6 of issue 10: a drill passed while archive_command failed on every segment.
  it('fails when the primary\'s archiver failed since its last success, quoting pgBackRest, and the start WAL is not in the repository', () => {
    const r = buildDrillReport(
      drillRun({
        checks: CHECKS_OK.split('\n')[0]!,
        archiver: { failing: true, failed_count: 7, last_failed_wal: '00000001000000000000000C', last_failed_time: '2026-05-01 03:00:01+00', last_archived_wal: '00000001000000000000000B', last_archived_time: '2026-05-01 02:00:00+00' },
        archiveCheck: { failed: true, msg: "pgbackrest check failed with error 82 (WAL did not reach the repository before the archive timeout): WAL segment 00000001000000000000000C was not archived before the 60000ms timeout" },
        repositoryMax: '00000001000000000000000B',
      }),
    )!;
    expect(r.status).toBe('failed');
    expect(r.problems).toEqual([
      'pgbackrest check failed with error 82 (WAL did not reach the repository before the archive timeout): WAL segment 00000001000000000000000C was not archived before the 60000ms timeout',
      'the primary db1 failed to archive 00000001000000000000000C at 2026-05-01 03:00:01+00 (7 failures in all) and archived nothing since its last success (00000001000000000000000B at 2026-05-01 02:00:00+00); its server log has archive_command\'s error',
      "the WAL current at the drill's start (00000001000000000000000C on db1) never reached the repository (its newest WAL is 00000001000000000000000B)",
    ]);
    expect(r.archive).toMatchObject({ wal_at_start: '00000001000000000000000C', repository_max: '00000001000000000000000B', reached_repository: false, archiver_failing: true });
    expect(formatDrillReport(r)).toMatch(/^DRILL FAILED/);
    expect(formatDrillReport(r)).toContain('  archiving        NOT proven: WAL at the start 00000001000000000000000C, newest in the repository 00000001000000000000000B; the archiver is FAILING\n');
  });

  it('fails when evidence is missing: an evidence step that did not run, an unknown recovery point, checks that did not run', () => {
    const noEvidence = buildDrillReport(drillRun({ checks: CHECKS_OK.split('\n')[0]!, drop: ['drill_archiver', 'drill_repository'] }))!;
    expect(noEvidence.problems).toEqual([
      "the primary's archiver (pg_stat_archiver) could not be read: it did not run",
      'the repository could not be read: it did not run',
    ]);
    const latest = 'LOG:  starting archive recovery\nLOG:  selected new timeline ID: 2\nLOG:  archive recovery complete';
    const unknown = buildDrillReport(drillRun({ proof: latest, params: { target: 'latest', checks: '[]' }, point: { rows: [{ last_transaction: null, timeline: 2 }] }, checks: '' }))!;
    expect(unknown.problems).toEqual([
      'the recovery point is unknown: no replayed transaction (server log, pg_last_xact_replay_timestamp()) and no end of redo in the server log',
    ]);
    expect(formatDrillReport(unknown)).toContain('  recovery point   - (UNKNOWN) (last transaction replayed)\n');
    // No transaction after the backup, but the end of redo is known: that is the recovery point.
    const redo = buildDrillReport(drillRun({ proof: `${latest}\nLOG:  redo done at 0/B000050 system usage: CPU: user: 0.00 s`, params: { target: 'latest', checks: '[]' }, point: { rows: [{ last_transaction: null, timeline: 2 }] }, checks: '' }))!;
    expect(redo.problems).toEqual([]);
    expect(redo.status).toBe('passed');
    expect(formatDrillReport(redo)).toContain('  recovery point   WAL replayed to 0/B000050 (no transaction replayed after the backup)\n');
    const twoAsked = buildDrillReport(drillRun({ checks: CHECKS_OK.split('\n')[0]!, params: { checks: '[{"sql":"SELECT 1"},{"sql":"SELECT 2"}]' } }))!;
    expect(twoAsked.problems).toEqual(['1 of 2 requested checks did not run']);
  });

  it('an interrupted drill fails and says whether its copy was removed', () => {
    const r = buildDrillReport(drillRun({ checks: CHECKS_OK.split('\n')[0]!, end: { status: 'interrupted', exitCode: 130 } }))!;
    expect(r.status).toBe('failed');
    expect(r.problems).toEqual(['the drill was interrupted']);
    expect(r.teardown).toBe('removed');
    const early = buildDrillReport(drillRun({ end: { status: 'interrupted', exitCode: 130 }, drop: ['drill_pgdata', 'drill_teardown', 'drill_restore_target'], checks: '' }))!;
    expect(early.teardown).toBe('not needed');
    const failedRestore = buildDrillReport(
      drillRun({ end: { status: 'failed', exitCode: 1, error: { code: 'STEP_FAILED', exitCode: 1, message: 'pgbackrest restore failed with error 40: unable to restore', step: 'restore-target', host: 'drill1' } }, checks: '' }),
    )!;
    expect(failedRestore.problems[0]).toBe('step restore-target on drill1 failed: pgbackrest restore failed with error 40: unable to restore');
  });

  it('passes with every check ok, and says kept when keep was set', () => {
    const ok = CHECKS_OK.split('\n')[0]!;
    const r = buildDrillReport(drillRun({ checks: ok, keep: true }))!;
    expect(r.status).toBe('passed');
    expect(r.teardown).toBe('kept');
    const text = formatDrillReport(r);
    expect(text.split('\n').slice(0, 7)).toEqual([
      'DRILL PASSED: point-in-time recovery of cluster main on drill1 (run 20260501T030000-abcdef)',
      '  target           name "before-drop": reached',
      '  backup restored  20260501-010000F (full)',
      '  RTO              3.5 s (restore start to the first query on the promoted copy)',
      // The phases add up to the RTO; the promotion's time is the server log's "archive recovery complete".
      '    phases         restore 1.0 s (50.0 MB, 50.0 MB/s), recovery 1.1 s, first query 1.4 s',
      '  RPO              0 bytes, 0.0 s (primary 0/C000060 at the start, copy recovered to 0/C0000D8)',
      '  recovery point   2026-05-01 02:59:10.25+00 (last transaction replayed, from the server log)',
    ]);
    expect(text).toContain('    ok   SELECT count(*) FROM t -> 1 (expected 1)\n');
    expect(text).toContain('  teardown         the copy was kept running (keep=true)\n');
  });

  it('parses only pgplay-check lines; report paths follow --report or the state directory', () => {
    expect(parseChecks('NOTICE:  something else\nNOTICE:  pgplay-check {broken')).toEqual([]);
    const beside = (base: string, json = `${base}.json`) => ({ json, text: `${base}.txt`, markdown: `${base}.md`, junit: `${base}.junit.xml`, html: `${base}.html` });
    expect(drillReportPaths('/s', 'r1')).toEqual(beside('/s/drills/r1'));
    expect(drillReportPaths('/s', 'r1', '/tmp/d.json')).toEqual(beside('/tmp/d'));
    expect(drillReportPaths('/s', 'r1', '/tmp/report')).toEqual(beside('/tmp/report', '/tmp/report'));
  });
});

describe('the declared outputs decide', () => {
  it('pitr-drill.yml declares the drill report', () => {
    expect(DECLARED.kind).toBe('drill');
  });

  it('a run registering none of the declared names has no drill report, whatever else it registered', () => {
    const other: DrillReportOutputs = {
      restore: ['r'], started: 's', ready: 'w', proof: 'p', recovery_point: 'q', checks: 'c', teardown: 't',
      copy: 'x', wal_at_start: 'a', archive_check: 'k', archiver: 'v', repository: 'y',
    };
    expect(buildWith(drillRun(), other)).toBeUndefined();
  });
});

describe('the drill report in every format', () => {
  it('JUnit XML: a suite with a test case per piece of evidence, parsed back by a JUnit parser; a failed check carries its evidence', async () => {
    const { parse: parseJunit } = await import('junit2json');
    const { formatDrillJunit } = await import('../../src/report/drill-junit.js');
    // CHECKS_OK's second check returns b where a was expected.
    const failing = buildDrillReport(drillRun({ keep: true }))!;
    const parsed = (await parseJunit(formatDrillJunit(failing))) as { tests?: number; failures?: number; testsuite?: Array<{ name?: string; testcase?: Array<{ name?: string; failure?: Array<{ message?: string; inner?: string }> }> }> };
    const suite = parsed.testsuite![0]!;
    expect(suite.name).toBe('pgplay drill main');
    const names = suite.testcase!.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['backup restored', 'target reached', 'WAL archiving reached the repository', 'recovery point known', 'RTO measured', 'copy torn down']));
    const check = suite.testcase!.find((t) => t.name?.startsWith('check 2:'))!;
    expect(check.failure?.[0]?.message).toContain('returned b, expected a');
    expect(check.failure?.[0]?.inner).toContain('recovery stopping at restore point');
    expect(parsed.failures).toBe(1);
    const passing = (await parseJunit(formatDrillJunit(buildDrillReport(drillRun({ keep: true, checks: CHECKS_OK.split('\n')[0]! }))!))) as { failures?: number; errors?: number };
    expect([passing.failures, passing.errors]).toEqual([0, 0]);
  });

  it('Markdown and HTML carry the verdict, the checks, the server log and (HTML) the trend chart, with nothing fetched', async () => {
    const { formatDrillMarkdown } = await import('../../src/report/drill-markdown.js');
    const { formatDrillHtml } = await import('../../src/report/drill-html.js');
    const { summarize } = await import('../../src/report/drill-history.js');
    const r = buildDrillReport(drillRun({ keep: true, checks: CHECKS_OK.split('\n')[0]! }))!;
    const md = formatDrillMarkdown(r);
    expect(r.problems, r.problems.join('; ')).toEqual([]);
    expect(md).toMatch(/^# Restore drill PASSED: cluster main\n/);
    expect(md).toContain('| target reached | passed |');
    expect(md).toContain('recovery stopping at restore point');
    const html = formatDrillHtml(r, [summarize(r)]);
    expect(html).toContain('<span class="passed">PASSED</span>');
    expect(html).toMatch(/<svg id="trend-chart"[^>]*>.*<circle class="pass"/s);
    expect(html).not.toMatch(/(src|href)=["']?https?:/);
  });

  it('trend: an RTO beyond the threshold over the previous passed drill is a slowdown; a failed drill is no baseline', async () => {
    const { drillTrend } = await import('../../src/report/drill-history.js');
    const mk = (id: string, started: string, ms: number, status: 'passed' | 'failed' = 'passed') => {
      const r = buildDrillReport(drillRun({ keep: true, checks: CHECKS_OK.split('\n')[0]! }))!;
      return { ...r, status, run: { ...r.run, id, started }, rto: { ...r.rto, ms } };
    };
    const first = mk('a', '2026-05-01T00:00:00Z', 10_000);
    const failedFast = mk('b', '2026-05-02T00:00:00Z', 1_000, 'failed');
    const slow = mk('c', '2026-05-03T00:00:00Z', 13_000);
    const t = drillTrend(slow, [first, failedFast, slow], 0.25);
    expect(t).toMatchObject({ previous: { run_id: 'a' }, slowdown: true });
    expect(t.rto_change).toBeCloseTo(0.3);
    expect(drillTrend(slow, [first, failedFast, slow], 0.5).slowdown).toBe(false);
    expect(drillTrend(first, [first]).previous).toBeNull();
  });
});
