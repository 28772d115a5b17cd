/** The rejoin report (src/report/rejoin.ts) from journals of the three ways a rejoin goes, with the steps rejoin.yml declares. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import type { JournalRun } from '../../src/journal/reader.js';
import type { Playbook } from '../../src/model/playbook.js';
import type { RejoinReportOutputs } from '../../src/model/report.js';
import { buildRejoinReport, formatRejoinReport } from '../../src/report/rejoin.js';

const DECLARED = (parse(readFileSync('playbooks/rejoin.yml', 'utf8')) as Playbook).report!.outputs as RejoinReportOutputs;
const PROMOTE = (parse(readFileSync('playbooks/promote.yml', 'utf8')) as Playbook).report!.outputs as { rejoin: RejoinReportOutputs };
const T0 = Date.parse('2026-05-01T03:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();

function step(step: string, startMs: number, durationMs: number, status: 'ok' | 'changed' | 'skipped'): RunEvent[] {
  return [
    { type: 'step-start', step, name: step, hosts: ['db1'], handler: false, time: at(startMs) },
    { type: 'step-result', step, name: step, host: 'db1', status, handler: false, attempts: 1, durationMs, time: at(startMs + durationMs), msg: `${step} ${status}` },
  ];
}

function journal(o: RejoinReportOutputs, events: RunEvent[], rewind: Record<string, unknown>): JournalRun {
  return {
    file: '/state/runs/r.jsonl',
    header: {
      type: 'journal', version: 1, runId: '20260501T030000-abcdef', playbook: '/p/rejoin.yml', playbookSha256: 'x', inventory: '/i.yml', cluster: 'main',
      params: { host: 'db1' }, check: false, options: {}, git: null, resumeOf: null, pid: 1, hostname: 'h', user: 'root', started: at(0),
    },
    events,
    registered: [{ type: 'registered', step: o.rewind, host: 'db1', handler: false, name: 'rewind', value: { changed: true, failed: false, skipped: false, ...rewind } }],
    status: 'ok',
    counts: { ok: 0, changed: 0, skipped: 0, failed: 0 },
  };
}

describe('rejoin report', () => {
  it('pg_rewind: the path, its time, no restore, and the time until streaming', () => {
    const o = DECLARED;
    const r = buildRejoinReport(journal(o, [...step(o.rewind, 1000, 1500, 'changed'), ...step(o.restore, 3000, 5, 'skipped'), ...step(o.streaming, 6000, 500, 'ok')], { rewound: true, reasons: [] }), o)!;
    expect(r).toMatchObject({ host: 'db1', path: 'rewind', rewind: { attempted: true, rewound: true, ms: 1500 }, restore: { ran: false, ms: null }, streaming: true, total_ms: 5500 });
    expect(formatRejoinReport(r)).toContain('REJOIN db1: pg_rewind\n  pg_rewind: rewound in 1.5 s');
  });

  it('pg_rewind impossible: the reasons and the delta restore\'s time', () => {
    const o = DECLARED;
    const reasons = ['wal_log_hints was off when the server last ran and the cluster has no data checksums (pg_rewind needs one of them)'];
    const r = buildRejoinReport(journal(o, [...step(o.rewind, 1000, 200, 'ok'), ...step(o.restore, 2000, 9000, 'changed'), ...step(o.streaming, 12000, 800, 'ok')], { changed: false, rewound: false, reasons }), o)!;
    expect(r).toMatchObject({ path: 'restore', rewind: { attempted: false, rewound: false, reasons, ms: 200 }, restore: { ran: true, ms: 9000 }, streaming: true });
    expect(formatRejoinReport(r)).toContain(`pg_rewind: not possible (checked in 0.2 s): ${reasons[0]}\n  delta restore: 9.0 s`);
  });

  it("pg_rewind failed (promote.yml's rebuild): its error, pg_control removed, the restore took over", () => {
    const o = PROMOTE.rejoin;
    const r = buildRejoinReport(journal(o, [...step(o.rewind, 1000, 700, 'changed'), ...step(o.restore, 2000, 4000, 'changed'), ...step(o.streaming, 7000, 100, 'ok')], { rewound: false, rewind_failed: true, error: 'could not find previous WAL record' }), o)!;
    expect(r).toMatchObject({ path: 'restore', rewind: { attempted: true, rewound: false, error: 'could not find previous WAL record' }, restore: { ran: true, ms: 4000 } });
    expect(formatRejoinReport(r)).toContain('failed after 0.7 s (could not find previous WAL record); pg_control removed');
  });

  it('is undefined when none of the declared steps ran', () => {
    expect(buildRejoinReport({ ...journal(DECLARED, [], {}), registered: [] }, DECLARED)).toBeUndefined();
  });
});
