/**
 * What a recovery to a target proved, read the same way for the PITR drill and for a restore: the
 * server log lines of the recovery, whether the server was promoted and the target reached, the
 * recovery point (the log's last completed transaction, else pg_last_xact_replay_timestamp(), else
 * where redo ended), and the RTO (from the start of the restore step to the ok result of the step that
 * saw the promoted server answer).
 */
import type { RunEvent } from '../engine/events.js';
import type { JournalRun } from '../journal/reader.js';

type StepStart = Extract<RunEvent, { type: 'step-start' }>;
type StepResult = Extract<RunEvent, { type: 'step-result' }>;
export type Registered = JournalRun['registered'][number];

/** Which run a report is of, as every procedure report states it. */
export interface ReportRun {
  id: string;
  playbook: string;
  inventory: string;
  cluster: string;
  started: string;
  finished: string | null;
  exit_code: number | null;
}

export function reportRun(run: JournalRun): ReportRun {
  return {
    id: run.header.runId,
    playbook: run.header.playbook,
    inventory: run.header.inventory,
    cluster: run.header.cluster,
    started: run.header.started,
    finished: run.end?.time ?? null,
    exit_code: run.end?.exitCode ?? null,
  };
}

export function record(run: JournalRun, name: string, host?: string): Registered | undefined {
  return run.registered.findLast((x) => x.name === name && (host === undefined || x.host === host));
}

export function registered(run: JournalRun, name: string, host?: string): Record<string, unknown> | undefined {
  return record(run, name, host)?.value as Record<string, unknown> | undefined;
}

export function ran(value: Record<string, unknown> | undefined): value is Record<string, unknown> {
  return value !== undefined && value.skipped !== true;
}

export function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The restore that ran: the first of the declared restore values that did not skip. */
export function restoreOf(run: JournalRun, names: string[]): { record: Registered; value: Record<string, unknown> } | undefined {
  for (const name of names) {
    const r = record(run, name);
    const value = r?.value as Record<string, unknown> | undefined;
    if (r && ran(value)) return { record: r, value };
  }
  return undefined;
}

export interface RecoveryEvidence {
  /** The server log lines that show how recovery went. */
  proof: string[];
  promoted: boolean;
  targetReached: boolean;
  /** "recovery ended before configured recovery target was reached": the target was never reached. */
  missed?: string;
  lastTransaction: string | null;
  source: 'log' | 'pg_last_xact_replay_timestamp' | null;
  restorePointTime: string | null;
  /** Where redo ended ("redo done at ..."): the recovery point when no transaction was replayed. */
  replayedTo: string | null;
  timeline: number | null;
}

/**
 * proofOut: the log lines (a command's stdout); ready: the registered wait for the promotion; point: the
 * registered query of last_transaction and timeline. latest is reached when archive recovery completed;
 * any other target only with a "recovery stopping" line.
 */
export function recoveryEvidence(proofOut: string, targetType: string, ready: Record<string, unknown> | undefined, point: Record<string, unknown> | undefined): RecoveryEvidence {
  const proof = proofOut.split('\n').filter((l) => l.trim() !== '');
  const promoted = ran(ready) && ready.failed !== true;
  const stopping = proof.find((l) => /recovery stopping/.test(l));
  const missed = proof.find((l) => /recovery ended before configured recovery target was reached/.test(l));
  const targetReached = promoted && !missed && (targetType === 'latest' ? proof.some((l) => /archive recovery complete|selected new timeline/.test(l)) : stopping !== undefined);
  const fromLog = proof.map((l) => /last completed transaction was at log time (.+)$/.exec(l)?.[1]).find((x) => x);
  const row = ran(point) ? ((point.rows as Record<string, unknown>[] | undefined)?.[0] ?? {}) : {};
  const lastTransaction = fromLog ?? str(row.last_transaction);
  return {
    proof,
    promoted,
    targetReached,
    ...(missed ? { missed } : {}),
    lastTransaction,
    source: fromLog ? 'log' : lastTransaction ? 'pg_last_xact_replay_timestamp' : null,
    restorePointTime: stopping ? (/, time (.+)$/.exec(stopping)?.[1] ?? null) : null,
    replayedTo: proof.map((l) => /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(l)?.[1]).find((x) => x) ?? null,
    timeline: typeof row.timeline === 'number' ? row.timeline : null,
  };
}

/** From the start of the restore step to the ok result of the ready step on the host. */
export function rtoOf(run: JournalRun, restoreStep: string | undefined, readyRecord: Registered | undefined, host: string): { ms: number | null; from: string | null; to: string | null } {
  const start = run.events.find((e): e is StepStart => e.type === 'step-start' && restoreStep !== undefined && e.step === restoreStep);
  const done = run.events.find(
    (e): e is StepResult => e.type === 'step-result' && readyRecord !== undefined && e.step === readyRecord.step && e.host === host && e.status === 'ok',
  );
  return { ms: start && done ? Date.parse(done.time) - Date.parse(start.time) : null, from: start?.time ?? null, to: done?.time ?? null };
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}
