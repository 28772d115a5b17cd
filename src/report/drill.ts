/**
 * The drill report: what a point-in-time-recovery drill (playbooks/pitr-drill.yml) proved, built from
 * the run's journal (its events and the values its steps registered), so it can be written after the
 * run or rebuilt later from the state directory. JSON for machines, a short text for people.
 *
 * The playbook declares which of its registered values feed which field (`report: {kind: drill,
 * outputs}`, see model/report.ts); a playbook that does not declare it gets no drill report.
 * - RTO: from the start of the restore step to the moment the promoted copy answered its first query
 *   (the `ready` wait succeeded): what a real recovery of this size would take.
 * - Recovery point: the last transaction the copy replayed, from the server log ("last completed
 *   transaction was at log time ...") or else pg_last_xact_replay_timestamp().
 * - Target reached: the log says "recovery stopping ..." (any target but latest), or for latest the
 *   copy finished archive recovery and was promoted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { RunEvent } from '../engine/events.js';
import type { JournalRun } from '../journal/reader.js';
import type { DrillReportOutputs } from '../model/report.js';

export const DRILL_REPORT_KIND = 'pgplay-drill-report';

type StepStart = Extract<RunEvent, { type: 'step-start' }>;
type StepResult = Extract<RunEvent, { type: 'step-result' }>;

export interface DrillCheck {
  n: number;
  sql: string;
  expect: string | null;
  got: string | null;
  error: string | null;
  ok: boolean;
}

export interface DrillReport {
  kind: typeof DRILL_REPORT_KIND;
  version: 1;
  status: 'passed' | 'failed';
  /** Why it failed, in the order they matter; empty when it passed. */
  problems: string[];
  run: { id: string; playbook: string; inventory: string; cluster: string; started: string; finished: string | null; exit_code: number | null };
  host: string;
  target: { type: string; value: string | null };
  backup: { set: string | null; type: string | null; recovery_start: string | null };
  target_reached: boolean;
  /** The server log lines that show how recovery went. */
  proof: string[];
  rto: { ms: number | null; from: string | null; to: string | null };
  recovery_point: { last_transaction: string | null; source: 'log' | 'pg_last_xact_replay_timestamp' | null; restore_point_time: string | null };
  timeline: number | null;
  checks: DrillCheck[];
  teardown: 'removed' | 'kept' | 'not done';
}

type Registered = JournalRun['registered'][number];

function record(run: JournalRun, name: string, host?: string): Registered | undefined {
  return run.registered.findLast((x) => x.name === name && (host === undefined || x.host === host));
}

function registered(run: JournalRun, name: string, host?: string): Record<string, unknown> | undefined {
  return record(run, name, host)?.value as Record<string, unknown> | undefined;
}

function ran(value: Record<string, unknown> | undefined): value is Record<string, unknown> {
  return value !== undefined && value.skipped !== true;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The restore that ran: the first of the declared restore values that did not skip. */
function restoreOf(run: JournalRun, names: string[]): { record: Registered; value: Record<string, unknown> } | undefined {
  for (const name of names) {
    const r = record(run, name);
    const value = r?.value as Record<string, unknown> | undefined;
    if (r && ran(value)) return { record: r, value };
  }
  return undefined;
}

export function parseChecks(stderr: string): DrillCheck[] {
  const out: DrillCheck[] = [];
  for (const line of stderr.split('\n')) {
    const m = /pgplay-check (\{.*\})\s*$/.exec(line);
    if (!m) continue;
    try {
      const c = JSON.parse(m[1]!) as DrillCheck;
      out.push({ n: c.n, sql: c.sql, expect: c.expect ?? null, got: c.got ?? null, error: c.error ?? null, ok: c.ok === true });
    } catch {
      // a NOTICE the drill did not write
    }
  }
  return out;
}

/**
 * The report of a run of a playbook that declares a drill report, fed by the registered values its
 * declaration names; undefined when the run registered none of them (it stopped before the drill).
 */
export function buildDrillReport(run: JournalRun, outputs: DrillReportOutputs): DrillReport | undefined {
  const names = [...outputs.restore, outputs.started, outputs.ready, outputs.proof, outputs.recovery_point, outputs.checks, outputs.teardown];
  if (!run.registered.some((r) => names.includes(r.name))) return undefined;
  const params = run.header.params as Record<string, unknown>;
  const restore = restoreOf(run, outputs.restore);
  const host = restore ? restore.record.host : String(params.host ?? 'drill');
  const readyRecord = record(run, outputs.ready, host);
  const ready = readyRecord?.value as Record<string, unknown> | undefined;
  const start = registered(run, outputs.started, host);
  const proofOut = str(registered(run, outputs.proof, host)?.stdout) ?? '';
  const point = registered(run, outputs.recovery_point, host);
  const checksOut = registered(run, outputs.checks, host);
  const teardown = registered(run, outputs.teardown, host);
  const targetType = String(params.target ?? 'latest');

  const proof = proofOut.split('\n').filter((l) => l.trim() !== '');
  const promoted = ran(ready) && ready.failed !== true;
  const stopping = proof.find((l) => /recovery stopping/.test(l));
  const missed = proof.find((l) => /recovery ended before configured recovery target was reached/.test(l));
  const targetReached = promoted && !missed && (targetType === 'latest' ? proof.some((l) => /archive recovery complete|selected new timeline/.test(l)) : stopping !== undefined);

  const fromLog = proof.map((l) => /last completed transaction was at log time (.+)$/.exec(l)?.[1]).find((x) => x);
  const row = ran(point) ? ((point.rows as Record<string, unknown>[] | undefined)?.[0] ?? {}) : {};
  const lastTx = fromLog ?? str(row.last_transaction);
  const restorePointTime = stopping ? (/, time (.+)$/.exec(stopping)?.[1] ?? null) : null;

  const restoreStart = run.events.find((e): e is StepStart => e.type === 'step-start' && restore !== undefined && e.step === restore.record.step);
  const readyResult = run.events.find(
    (e): e is StepResult => e.type === 'step-result' && readyRecord !== undefined && e.step === readyRecord.step && e.host === host && e.status === 'ok',
  );
  const rtoMs = restoreStart && readyResult ? Date.parse(readyResult.time) - Date.parse(restoreStart.time) : null;

  const checks = ran(checksOut) ? parseChecks(String(checksOut.stderr ?? '')) : [];
  const teardownState: DrillReport['teardown'] = params.keep === true || params.keep === 'true' ? 'kept' : ran(teardown) && teardown.failed !== true ? 'removed' : 'not done';

  const problems: string[] = [];
  if (!restore) problems.push('the restore did not run');
  else if (start?.failed === true) problems.push(`the restored copy did not start: ${String(start.msg ?? '')}`);
  else if (!promoted) problems.push(`the restored copy was not promoted: ${String(ready?.msg ?? 'not reached')}`);
  if (missed) problems.push(missed.replace(/^.*?(FATAL|LOG):\s*/, ''));
  else if (restore && promoted && !targetReached) problems.push(`the server log does not show the target ${targetType} being reached`);
  for (const c of checks.filter((x) => !x.ok)) {
    problems.push(`check ${c.n} (${c.sql}) ${c.error ? `failed: ${c.error}` : `returned ${c.got ?? 'no row'}, expected ${c.expect}`}`);
  }
  if (ran(checksOut) && checksOut.failed === true) problems.push(`the checks could not run: ${String(checksOut.msg ?? '').trim()}`);
  if (teardownState === 'not done') problems.push('the copy was not torn down');

  return {
    kind: DRILL_REPORT_KIND,
    version: 1,
    status: problems.length === 0 ? 'passed' : 'failed',
    problems,
    run: {
      id: run.header.runId,
      playbook: run.header.playbook,
      inventory: run.header.inventory,
      cluster: run.header.cluster,
      started: run.header.started,
      finished: run.end?.time ?? null,
      exit_code: run.end?.exitCode ?? null,
    },
    host,
    target: { type: targetType, value: str(params.target_value) },
    backup: {
      set: str(restore?.value.set),
      type: str(restore?.value.backup_type),
      recovery_start: str(restore?.value.recovery_start),
    },
    target_reached: targetReached,
    proof,
    rto: { ms: rtoMs, from: restoreStart?.time ?? null, to: readyResult?.time ?? null },
    recovery_point: {
      last_transaction: lastTx,
      source: fromLog ? 'log' : lastTx ? 'pg_last_xact_replay_timestamp' : null,
      restore_point_time: restorePointTime,
    },
    timeline: typeof row.timeline === 'number' ? row.timeline : null,
    checks,
    teardown: teardownState,
  };
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatDrillReport(r: DrillReport): string {
  const target = r.target.value ? `${r.target.type} ${JSON.stringify(r.target.value)}` : r.target.type;
  const lines = [
    `DRILL ${r.status.toUpperCase()}: point-in-time recovery of cluster ${r.run.cluster} on ${r.host} (run ${r.run.id})`,
    `  target           ${target}: ${r.target_reached ? 'reached' : 'NOT reached'}`,
    `  backup restored  ${r.backup.set ?? '-'}${r.backup.type ? ` (${r.backup.type})` : ''}`,
    `  RTO              ${r.rto.ms === null ? '-' : seconds(r.rto.ms)} (restore start to the first query on the promoted copy)`,
    `  recovery point   ${r.recovery_point.last_transaction ?? '-'} (last transaction replayed${r.recovery_point.source ? `, from ${r.recovery_point.source === 'log' ? 'the server log' : 'pg_last_xact_replay_timestamp()'}` : ''})`,
  ];
  if (r.recovery_point.restore_point_time) lines.push(`  restore point    created ${r.recovery_point.restore_point_time}`);
  if (r.timeline !== null) lines.push(`  timeline         ${r.timeline} (the copy's own, never archived)`);
  const passed = r.checks.filter((c) => c.ok).length;
  lines.push(`  checks           ${r.checks.length === 0 ? 'none given' : `${passed}/${r.checks.length} passed`}`);
  for (const c of r.checks) {
    lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.sql}${c.error ? ` -> error: ${c.error}` : ` -> ${c.got ?? '(no row)'}${c.expect !== null ? ` (expected ${c.expect})` : ''}`}`);
  }
  lines.push(`  teardown         ${r.teardown === 'removed' ? 'the copy was stopped and removed' : r.teardown === 'kept' ? 'the copy was kept running (keep=true)' : 'NOT done'}`);
  if (r.proof.length) {
    lines.push('  server log:');
    for (const l of r.proof) lines.push(`    ${l}`);
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n') + '\n';
}

/** --report FILE, else <state dir>/drills/<run id>.json; the text summary goes beside it as .txt. */
export function drillReportPaths(stateDir: string, runId: string, flag?: string): { json: string; text: string } {
  const json = flag ?? join(stateDir, 'drills', `${runId}.json`);
  const text = json.endsWith('.json') ? `${json.slice(0, -'.json'.length)}.txt` : `${json}.txt`;
  return { json, text };
}

export async function writeDrillReport(report: DrillReport, paths: { json: string; text: string }): Promise<void> {
  await mkdir(dirname(paths.json), { recursive: true, mode: 0o700 });
  await writeFile(paths.json, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
  await writeFile(paths.text, formatDrillReport(report), { mode: 0o600 });
}
