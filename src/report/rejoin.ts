/**
 * The rejoin report: how an old primary came back as a standby (playbooks/rejoin.yml): by pg_rewind or
 * by the delta restore, why pg_rewind was not taken (its prerequisites, or its own error), and how long
 * each part took. Built from the run's journal (the step results the playbook's `report: {kind: rejoin}`
 * names, and the value the rewind step registered), so it is exactly what the run recorded (redacted).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { RunEvent } from '../engine/events.js';
import type { JournalRun } from '../journal/reader.js';
import type { RejoinReportOutputs } from '../model/report.js';

export const REJOIN_REPORT_KIND = 'pgplay-rejoin-report';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

export interface RejoinReport {
  kind: typeof REJOIN_REPORT_KIND;
  version: 1;
  run: { id: string; playbook: string; inventory: string; started: string; exit_code: number | null };
  host: string | null;
  /** rewind: pg_rewind brought it back; restore: the delta restore did; none: it streamed already; unfinished: the run stopped before either. */
  path: 'rewind' | 'restore' | 'none' | 'unfinished';
  rewind: {
    /** pg_rewind ran (successfully or not). */
    attempted: boolean;
    rewound: boolean;
    /** Why pg_rewind was not possible (its prerequisites), or its own error when it failed. */
    reasons: string[];
    error: string | null;
    /** The rewind step: the prerequisite checks, and pg_rewind when it ran. */
    ms: number | null;
  };
  restore: { ran: boolean; ms: number | null; msg: string | null };
  /** The new primary saw the host streaming. */
  streaming: boolean;
  /** From the first of these steps to the host streaming. */
  total_ms: number | null;
}

function result(run: JournalRun, step: string): StepResult | undefined {
  return run.events.findLast((e): e is StepResult => e.type === 'step-result' && e.step === step && !e.handler);
}

type StepStart = Extract<RunEvent, { type: 'step-start' }>;

function started(run: JournalRun, step: string): number | undefined {
  const e = run.events.findLast((x): x is StepStart => x.type === 'step-start' && x.step === step && !x.handler);
  return e ? Date.parse(e.time) : undefined;
}

export function buildRejoinReport(run: JournalRun, outputs: RejoinReportOutputs): RejoinReport | undefined {
  const rewindResult = result(run, outputs.rewind);
  const restoreResult = result(run, outputs.restore);
  const streamingResult = result(run, outputs.streaming);
  if (!rewindResult && !restoreResult && !streamingResult) return undefined;
  const value = run.registered.findLast((r) => r.step === outputs.rewind)?.value as Record<string, unknown> | undefined;
  const rewound = value?.rewound === true;
  const attempted = rewound || value?.rewind_failed === true;
  const restored = restoreResult?.status === 'changed';
  const streaming = streamingResult?.status === 'ok' || streamingResult?.status === 'changed';
  const path: RejoinReport['path'] = rewound ? 'rewind' : restored ? 'restore' : streaming ? 'none' : 'unfinished';
  const ran = (r: StepResult | undefined) => r !== undefined && r.status !== 'skipped';
  const first = [outputs.rewind, outputs.restore].map((s) => started(run, s)).find((t) => t !== undefined);
  const end = streamingResult && streaming ? started(run, outputs.streaming) : undefined;
  const reasons = Array.isArray(value?.reasons) ? (value.reasons as unknown[]).map(String) : [];
  return {
    kind: REJOIN_REPORT_KIND,
    version: 1,
    run: { id: run.header.runId, playbook: run.header.playbook, inventory: run.header.inventory, started: run.header.started, exit_code: run.end?.exitCode ?? null },
    host: rewindResult?.host ?? restoreResult?.host ?? null,
    path,
    rewind: {
      attempted,
      rewound,
      reasons,
      error: typeof value?.error === 'string' ? value.error : null,
      ms: ran(rewindResult) ? rewindResult!.durationMs : null,
    },
    restore: { ran: restored, ms: restored ? restoreResult!.durationMs : null, msg: restored ? (restoreResult!.msg ?? null) : null },
    streaming,
    total_ms: first !== undefined && end !== undefined ? end - first + (streamingResult?.durationMs ?? 0) : null,
  };
}

const seconds = (ms: number | null) => (ms === null ? '?' : `${(ms / 1000).toFixed(1)} s`);

export function formatRejoinReport(r: RejoinReport): string {
  const host = r.host ?? 'the host';
  const lines = [`REJOIN ${host}: ${r.path === 'rewind' ? 'pg_rewind' : r.path === 'restore' ? 'delta restore' : r.path === 'none' ? 'nothing to do (it streams already)' : 'not finished'}`];
  if (r.rewind.rewound) lines.push(`  pg_rewind: rewound in ${seconds(r.rewind.ms)}`);
  else if (r.rewind.attempted) lines.push(`  pg_rewind: failed after ${seconds(r.rewind.ms)} (${r.rewind.error ?? 'no message'}); pg_control removed, the directory was restored instead`);
  else if (r.rewind.reasons.length) lines.push(`  pg_rewind: not possible (checked in ${seconds(r.rewind.ms)}): ${r.rewind.reasons.join('; ')}`);
  if (r.restore.ran) lines.push(`  delta restore: ${seconds(r.restore.ms)}`);
  lines.push(`  streaming: ${r.streaming ? 'yes' : 'no'}${r.total_ms !== null ? `; ${seconds(r.total_ms)} from the first rejoin step until the new primary saw it streaming` : ''}`);
  return lines.join('\n') + '\n';
}

export async function writeRejoinReport(report: RejoinReport, file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
}
