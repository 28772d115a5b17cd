import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunEvent } from '../../src/engine/events.js';
import type { JournalRun } from '../../src/journal/reader.js';
import type { RegisteredRecord } from '../../src/journal/types.js';
import type { Playbook } from '../../src/model/playbook.js';
import type { RestoreReportOutputs } from '../../src/model/report.js';
import { buildRestoreReport as buildWith, formatRestoreReport, restoreTopologyChange } from '../../src/report/restore.js';

// The report restore.yml declares: the test reads what the shipped playbook says feeds each field.
const DECLARED = (parse(readFileSync('playbooks/restore.yml', 'utf8')) as Playbook).report!;
const buildRestoreReport = (run: JournalRun) => buildWith(run, DECLARED.outputs as RestoreReportOutputs);
const STEP_OF: Record<string, string> = { restore_target_restore: 'pgbackrest/restore-target', restore_latest: 'pgbackrest/restore-latest', recovery_ready: 'recover/ready' };

const T0 = '2026-05-01T03:00:00.000Z';
const at = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();
const LOG_OK = [
  '2026-05-01 03:00:02.100 UTC [9] LOG:  starting point-in-time recovery to "before_drop"',
  '2026-05-01 03:00:02.900 UTC [9] LOG:  recovery stopping at restore point "before_drop", time 2026-05-01 02:59:10.5+00',
  '2026-05-01 03:00:02.900 UTC [9] LOG:  last completed transaction was at log time 2026-05-01 02:59:10.25+00',
  '2026-05-01 03:00:03.000 UTC [9] LOG:  selected new timeline ID: 2',
].join('\n');

function reg(name: string, value: Record<string, unknown>, host = 'db1'): RegisteredRecord {
  return { type: 'registered', step: STEP_OF[name] ?? name, host, handler: false, name, value: { changed: false, failed: false, skipped: false, msg: '', ...value } };
}

function restoreRun(o: { host?: string; previous?: string; proof?: string; backup?: boolean } = {}): JournalRun {
  const host = o.host ?? 'db1';
  const events: RunEvent[] = [
    { type: 'step-start', step: 'pgbackrest/restore-target', name: 'Restore', hosts: [host], handler: false, time: at(1000) },
    { type: 'step-result', step: 'recover/ready', name: 'ready', host, status: 'ok', handler: false, attempts: 1, durationMs: 10, time: at(7500) },
    { type: 'run-end', runId: 'r1', status: 'ok', exitCode: 0, recap: {}, durationMs: 9000, time: at(9000) } as RunEvent,
  ];
  return {
    file: '/state/runs/r1.jsonl',
    header: {
      type: 'journal', version: 1, runId: '20260501T030000-abcdef', playbook: '/p/restore.yml', playbookSha256: 'x', inventory: '/i.yml',
      cluster: 'main', params: { host, target: 'name', target_value: 'before_drop' }, check: false, options: {},
      git: null, resumeOf: null, pid: 1, hostname: 'h', user: 'root', started: T0,
    },
    events,
    registered: [
      reg('restore_target', { set: '20260501-010000F', reason: 'the newest backup that ended before the target' }, host),
      reg('restore_kept', { changed: true, stdout: '/var/lib/postgresql/15/main.pgplay-20260501T030001Z\n' }, host),
      reg('restore_latest', { skipped: true }, host),
      reg('restore_target_restore', { changed: true, set: '20260501-010000F', backup_type: 'full' }, host),
      reg('recovery_ready', { rc: 0 }, host),
      reg('recovery_proof', { rc: 0, stdout: o.proof ?? LOG_OK }, host),
      reg('restore_point', { rows: [{ last_transaction: null, timeline: 2 }] }, host),
      ...(o.backup === false ? [] : [reg('new_primary_backup', { changed: true, label: '20260501-030010F' }, 'bk1')]),
      reg('restore_primary', { rows: [{ read_write: true, timeline: 2, previous_primary: o.previous ?? 'db1', standbys: host === 'db1' ? 'db2' : '' }] }, host),
    ],
    end: events[2] as Extract<RunEvent, { type: 'run-end' }>,
    status: 'ok',
    counts: { ok: 0, changed: 0, skipped: 0, failed: 0 },
  };
}

describe('restore report', () => {
  it('an in-place restore to a restore point: target reached from the log, RTO, kept aside, the new backup, no topology change', () => {
    const run = restoreRun();
    const r = buildRestoreReport(run)!;
    expect(r).toMatchObject({
      status: 'passed', problems: [], host: 'db1', previous_primary: 'db1', target_reached: true, timeline: 2,
      backup: { set: '20260501-010000F', type: 'full', reason: 'the newest backup that ended before the target' },
      rto: { ms: 6500 }, recovery_point: { last_transaction: '2026-05-01 02:59:10.25+00', source: 'log', restore_point_time: '2026-05-01 02:59:10.5+00' },
      kept_aside: '/var/lib/postgresql/15/main.pgplay-20260501T030001Z', new_backup: '20260501-030010F', standbys: ['db2'],
    });
    expect(restoreTopologyChange(run, r)).toBeUndefined();
    expect(formatRestoreReport(r)).toContain('RESTORE PASSED: cluster main restored on db1');
  });

  it('onto another host: the topology change names the new and the old primary', () => {
    const run = restoreRun({ host: 'db2', previous: 'db1' });
    const r = buildRestoreReport(run)!;
    expect(restoreTopologyChange(run, r)).toEqual({ type: 'topology-changed', runId: run.header.runId, inventory: '/i.yml', primary: 'db2', previousPrimary: 'db1', timeline: 2, previousPrimaryStreams: false });
  });

  it('fails without the log line that proves the target, and without the new backup', () => {
    const r = buildRestoreReport(restoreRun({ proof: '2026-05-01 03:00:03.000 UTC [9] LOG:  selected new timeline ID: 2', backup: false }))!;
    expect(r.status).toBe('failed');
    expect(r.target_reached).toBe(false);
    expect(r.problems).toEqual(['the server log does not show the target name being reached', 'no new full backup was taken on the new timeline']);
  });
});
