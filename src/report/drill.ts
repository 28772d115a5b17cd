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
 * - Evidence: a drill passes only when the primary's archiver has not failed since its last success,
 *   the WAL current at the drill's start reached the repository, the recovery point is known, and every
 *   requested check ran and passed. Each missing piece is a problem, with the tool's own message.
 */
import type { JournalRun } from '../journal/reader.js';
import type { DrillReportOutputs } from '../model/report.js';
import type { DataCheckResult } from '../postgres/data-checks.js';
import { rpoOf, rtoPhases, targetWord, type DrillTargets, type Rpo, type RtoPhases } from './drill-measures.js';
import { ran, record, recoveryEvidence, registered, reportRun, restoreOf, rtoOf, seconds, str, type ReportRun } from './recovery-evidence.js';


export const DRILL_REPORT_KIND = 'pgplay-drill-report';


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
  run: ReportRun;
  host: string;
  target: { type: string; value: string | null };
  backup: {
    set: string | null;
    type: string | null;
    recovery_start: string | null;
    /** Why this set (pitr_target): named with -p set, the newest that ended before the target, ... */
    reason: string | null;
    /** The target could not be placed and the newest set was used: a target older than it is never reached. */
    warning: string | null;
    /** The WAL the archive was checked to hold, from the set's start to the target. */
    wal: { from: string; to: string; segments: number } | null;
  };
  target_reached: boolean;
  /** The server log lines that show how recovery went. */
  proof: string[];
  rto: { ms: number | null; from: string | null; to: string | null; phases: RtoPhases };
  /** The distance between the primary's position at the drill's start and the copy's recovery point. */
  rpo: Rpo;
  /** The inventory's drills.rto and drills.rpo, met or missed; set when the report is stored. */
  targets?: DrillTargets;
  recovery_point: {
    last_transaction: string | null;
    source: 'log' | 'pg_last_xact_replay_timestamp' | null;
    restore_point_time: string | null;
    /** Where the copy's redo ended ("redo done at ..."): the recovery point when no transaction was replayed. */
    replayed_to: string | null;
  };
  /** The primary's archiving as the drill found it. */
  archive: {
    /** The primary's WAL segment and LSN when the drill started; it must reach the repository. */
    wal_at_start: string | null;
    lsn_at_start: string | null;
    /** The newest WAL segment in the repository after `pgbackrest check`. */
    repository_max: string | null;
    reached_repository: boolean;
    /** pg_stat_archiver: a failure since the last success. */
    archiver_failing: boolean | null;
    last_archived_wal: string | null;
    last_failed_wal: string | null;
  };
  timeline: number | null;
  checks: DrillCheck[];
  /** The data checks of the copy (amcheck, full read, row counts, sentinel): passed, failed or could not run. */
  data_checks: DataCheckResult[];
  /** not needed: the drill stopped before it made a copy. */
  teardown: 'removed' | 'kept' | 'not done' | 'not needed';
  /** Against the cluster's previous passed drill (drill-history.ts); set when the report is stored. */
  trend?: DrillTrend;
}

/** One drill in the cluster's history (drill-history.ts). */
export interface DrillSummary {
  run_id: string;
  cluster: string;
  started: string;
  status: DrillReport['status'];
  host: string;
  target: string;
  backup_set: string | null;
  rto_ms: number | null;
  /** Seconds between the primary's position at the drill's start and the copy's recovery point, when known. */
  rpo_s: number | null;
}

/** A drill against the previous passed drill of its cluster. */
export interface DrillTrend {
  previous: DrillSummary | null;
  /** RTO change against the previous passed drill, as a fraction (0.3 = 30 % slower). */
  rto_change: number | null;
  threshold: number;
  slowdown: boolean;
}

function firstRow(value: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const rows = ran(value) ? (value.rows as Record<string, unknown>[] | undefined) : undefined;
  return rows?.[0];
}

function requestedChecks(raw: unknown): number {
  try {
    const list = JSON.parse(String(raw ?? '[]')) as unknown;
    return Array.isArray(list) ? list.length : 0;
  } catch {
    return 0;
  }
}

/** Why a registered evidence step gave nothing: its own message, or that it did not run. */
function missing(value: Record<string, unknown> | undefined): string {
  if (!value) return 'it did not run';
  if (value.skipped === true) return `it was skipped (${String(value.msg ?? '')})`;
  return String(value.msg ?? 'no message').trim();
}

interface ArchiveEvidence {
  archive: DrillReport['archive'];
  problems: string[];
}

/** What the declared archive evidence (WAL at start, pgbackrest check, archiver, repository) registered, judged. */
function archiveEvidence(run: JournalRun, outputs: DrillReportOutputs): ArchiveEvidence {
  const problems: string[] = [];
  const primary = record(run, outputs.wal_at_start)?.host ?? 'the primary';
  const start = firstRow(registered(run, outputs.wal_at_start));
  const check = registered(run, outputs.archive_check);
  const archiverValue = registered(run, outputs.archiver);
  const archiver = firstRow(archiverValue);
  const repository = registered(run, outputs.repository);
  const wal = str(start?.wal);
  const max = ran(repository) && repository.failed !== true ? str(repository.archive_max) : null;
  const reached = wal !== null && max !== null && max >= wal;

  // The runner's message is pgBackRest's own error ("pgbackrest check failed with error 82: ...").
  if (ran(check) && check.failed === true) problems.push(missing(check));
  else if (!ran(check)) problems.push(`pgbackrest check did not archive the primary's current WAL: ${missing(check)}`);
  if (!archiver) problems.push(`the primary's archiver (pg_stat_archiver) could not be read: ${missing(archiverValue)}`);
  else if (archiver.failing === true) {
    problems.push(
      `the primary ${record(run, outputs.archiver)!.host} failed to archive ${str(archiver.last_failed_wal) ?? 'WAL'} ` +
        `at ${str(archiver.last_failed_time) ?? '?'} (${String(archiver.failed_count)} failures in all) and archived nothing since its last success ` +
        `(${str(archiver.last_archived_wal) ?? 'none'}${archiver.last_archived_time ? ` at ${String(archiver.last_archived_time)}` : ''}); its server log has archive_command's error`,
    );
  }
  if (!wal) problems.push(`the primary's WAL position at the drill's start could not be read: ${missing(registered(run, outputs.wal_at_start))}`);
  else if (!ran(repository) || repository.failed === true) problems.push(`the repository could not be read: ${missing(repository)}`);
  else if (!reached) problems.push(`the WAL current at the drill's start (${wal} on ${primary}) never reached the repository (its newest WAL is ${max ?? 'none'})`);

  return {
    archive: {
      wal_at_start: wal,
      lsn_at_start: str(start?.lsn),
      repository_max: max,
      reached_repository: reached,
      archiver_failing: archiver ? archiver.failing === true : null,
      last_archived_wal: str(archiver?.last_archived_wal),
      last_failed_wal: str(archiver?.last_failed_wal),
    },
    problems,
  };
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
  const madeCopy = registered(run, outputs.copy, host) !== undefined;
  const targetType = String(params.target ?? 'latest');

  const evidenceOfRecovery = recoveryEvidence(proofOut, targetType, ready, point);
  const { proof, promoted, targetReached, missed, lastTransaction: lastTx, restorePointTime, replayedTo } = evidenceOfRecovery;
  const rto = rtoOf(run, restore?.record.step, readyRecord, host);
  const rpo = rpoOf(firstRow(registered(run, outputs.wal_at_start)), firstRow(point), lastTx, replayedTo);
  const dataChecks = (outputs.data_checks ?? []).flatMap((name) => {
    const v = registered(run, name, host);
    return ran(v) && Array.isArray(v.checks) ? (v.checks as DataCheckResult[]) : [];
  });
  const prepared = outputs.prepare ? registered(run, outputs.prepare, host) : undefined;

  const checks = ran(checksOut) ? parseChecks(String(checksOut.stderr ?? '')) : [];
  const teardownState: DrillReport['teardown'] =
    params.keep === true || params.keep === 'true' ? 'kept' : ran(teardown) && teardown.failed !== true ? 'removed' : madeCopy ? 'not done' : 'not needed';
  const evidence = archiveEvidence(run, outputs);
  const chosen = outputs.target_check ? registered(run, outputs.target_check) : undefined;
  const chosenWal = ran(chosen) ? (chosen.wal as { from?: unknown; to?: unknown; segments?: unknown } | undefined) : undefined;

  const problems: string[] = [];
  if (run.end?.status === 'interrupted') problems.push('the drill was interrupted');
  else if (run.end?.error && run.end.error.step !== 'verdict' && (run.end.status === 'failed' || run.end.status === 'refused' || run.end.status === 'invalid')) {
    problems.push(`${run.end.error.step ? `step ${run.end.error.step}${run.end.error.host ? ` on ${run.end.error.host}` : ''} ` : ''}failed: ${run.end.error.message}`);
  }
  problems.push(...evidence.problems);
  if (!restore) problems.push('the restore did not run');
  else if (start?.failed === true) problems.push(`the restored copy did not start: ${String(start.msg ?? '')}`);
  else if (!promoted) problems.push(`the restored copy was not promoted: ${String(ready?.msg ?? 'not reached')}`);
  if (missed) problems.push(missed.replace(/^.*?(FATAL|LOG):\s*/, ''));
  else if (restore && promoted && !targetReached) problems.push(`the server log does not show the target ${targetType} being reached`);
  for (const c of checks.filter((x) => !x.ok)) {
    problems.push(`check ${c.n} (${c.sql}) ${c.error ? `failed: ${c.error}` : `returned ${c.got ?? 'no row'}, expected ${c.expect}`}`);
  }
  if (ran(checksOut) && checksOut.failed === true) problems.push(`the checks could not run: ${String(checksOut.msg ?? '').trim()}`);
  else {
    const requested = requestedChecks(params.checks);
    if (checks.length < requested) problems.push(`${requested - checks.length} of ${requested} requested check${requested === 1 ? '' : 's'} did not run`);
  }
  if (ran(prepared) && prepared.failed === true) problems.push(`the preparation of the copy failed: ${String(prepared.msg ?? '').trim()}`);
  for (const c of dataChecks.filter((x) => x.status !== 'passed')) problems.push(`${c.name} ${c.status === 'failed' ? 'FAILED' : 'could not run'}: ${c.detail}`);
  for (const name of outputs.data_checks ?? []) {
    const v = registered(run, name, host);
    if (ran(v) && v.failed === true) problems.push(`the ${name} step failed: ${String(v.msg ?? '').trim()}`);
  }
  if (restore && promoted && !lastTx && !replayedTo) {
    problems.push('the recovery point is unknown: no replayed transaction (server log, pg_last_xact_replay_timestamp()) and no end of redo in the server log');
  }
  if (teardownState === 'not done') problems.push('the copy was not torn down');

  return {
    kind: DRILL_REPORT_KIND,
    version: 1,
    status: problems.length === 0 ? 'passed' : 'failed',
    problems,
    run: reportRun(run),
    host,
    target: { type: targetType, value: str(params.target_value) },
    backup: {
      set: str(restore?.value.set),
      type: str(restore?.value.backup_type),
      recovery_start: str(restore?.value.recovery_start),
      reason: ran(chosen) ? str(chosen.reason) : null,
      warning: ran(chosen) ? str(chosen.warning) : null,
      wal: chosenWal && typeof chosenWal.from === 'string' && typeof chosenWal.to === 'string' ? { from: chosenWal.from, to: chosenWal.to, segments: Number(chosenWal.segments ?? 0) } : null,
    },
    target_reached: targetReached,
    proof,
    rto: { ...rto, phases: rtoPhases(run, restore, rto, proof) },
    rpo,
    recovery_point: {
      last_transaction: lastTx,
      source: evidenceOfRecovery.source,
      restore_point_time: restorePointTime,
      replayed_to: replayedTo,
    },
    archive: evidence.archive,
    timeline: evidenceOfRecovery.timeline,
    checks,
    data_checks: dataChecks,
    teardown: teardownState,
  };
}


export function formatDrillReport(r: DrillReport): string {
  const target = r.target.value ? `${r.target.type} ${JSON.stringify(r.target.value)}` : r.target.type;
  const lines = [
    `DRILL ${r.status.toUpperCase()}: point-in-time recovery of cluster ${r.run.cluster} on ${r.host} (run ${r.run.id})`,
    `  target           ${target}: ${r.target_reached ? 'reached' : 'NOT reached'}`,
    `  backup restored  ${r.backup.set ?? '-'}${r.backup.type ? ` (${r.backup.type})` : ''}`,
    ...(r.backup.reason ? [`                   chosen because ${r.backup.reason}`] : []),
    ...(r.backup.warning ? [`  WARNING          ${r.backup.warning}`] : []),
    ...(r.backup.wal ? [`  WAL checked      ${r.backup.wal.from}..${r.backup.wal.to} (${r.backup.wal.segments} segments in the archive before the restore)`] : []),
    `  RTO              ${r.rto.ms === null ? '-' : seconds(r.rto.ms)} (restore start to the first query on the promoted copy)${r.targets?.rto ? `: target ${r.targets.rto.target} ${targetWord(r.targets.rto)}` : ''}`,
    `    phases         ${phasesText(r)}`,
    `  RPO              ${rpoText(r)}${r.targets?.rpo ? `: target ${r.targets.rpo.target} ${targetWord(r.targets.rpo)}` : ''}`,
    r.recovery_point.last_transaction || !r.recovery_point.replayed_to
      ? `  recovery point   ${r.recovery_point.last_transaction ?? '- (UNKNOWN)'} (last transaction replayed${r.recovery_point.source ? `, from ${r.recovery_point.source === 'log' ? 'the server log' : 'pg_last_xact_replay_timestamp()'}` : ''})`
      : `  recovery point   WAL replayed to ${r.recovery_point.replayed_to} (no transaction replayed after the backup)`,
    `  archiving        ${r.archive.reached_repository ? `the WAL current at the start (${r.archive.wal_at_start}) reached the repository` : `NOT proven: WAL at the start ${r.archive.wal_at_start ?? '?'}, newest in the repository ${r.archive.repository_max ?? '?'}`}${r.archive.archiver_failing ? '; the archiver is FAILING' : ''}`,
  ];
  if (r.recovery_point.restore_point_time) lines.push(`  restore point    created ${r.recovery_point.restore_point_time}`);
  if (r.timeline !== null) lines.push(`  timeline         ${r.timeline} (the copy's own, never archived)`);
  const passed = r.checks.filter((c) => c.ok).length;
  const all = r.checks.length + (r.data_checks ?? []).length;
  const passedAll = passed + (r.data_checks ?? []).filter((c) => c.status === 'passed').length;
  lines.push(`  checks           ${all === 0 ? 'none given' : `${passedAll}/${all} passed`}`);
  for (const c of r.data_checks ?? []) lines.push(`    ${c.status === 'passed' ? 'ok  ' : c.status === 'failed' ? 'FAIL' : 'NOT RUN'} ${c.name}: ${c.detail}`);
  for (const c of r.checks) {
    lines.push(`    ${c.ok ? 'ok  ' : 'FAIL'} ${c.sql}${c.error ? ` -> error: ${c.error}` : ` -> ${c.got ?? '(no row)'}${c.expect !== null ? ` (expected ${c.expect})` : ''}`}`);
  }
  if (r.trend?.previous && r.trend.rto_change !== null) {
    const pct = (r.trend.rto_change * 100).toFixed(0);
    lines.push(`  trend            RTO ${r.trend.rto_change >= 0 ? '+' : ''}${pct} % against run ${r.trend.previous.run_id}${r.trend.slowdown ? ` (SLOWDOWN: beyond ${(r.trend.threshold * 100).toFixed(0)} %)` : ''}`);
  }
  const teardown = { removed: 'the copy was stopped and removed', kept: 'the copy was kept running (keep=true)', 'not needed': 'nothing to remove (no copy was made)', 'not done': 'NOT done' };
  lines.push(`  teardown         ${teardown[r.teardown]}`);
  if (r.proof.length) {
    lines.push('  server log:');
    for (const l of r.proof) lines.push(`    ${l}`);
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n') + '\n';
}


/** restore 1.2 s (23.1 MB, 19.2 MB/s), recovery 0.8 s, first query 0.1 s */
export function phasesText(r: DrillReport): string {
  const p = r.rto.phases;
  if (!p) return '-';
  const ms = (v: number | null) => (v === null ? '?' : seconds(v));
  const size = p.bytes_restored === null ? '' : ` (${mb(p.bytes_restored)}${p.restore_bytes_per_s === null ? '' : `, ${mb(p.restore_bytes_per_s)}/s`})`;
  return `restore ${ms(p.restore_ms)}${size}, recovery ${ms(p.recovery_ms)}, first query ${ms(p.first_query_ms)}`;
}

export function rpoText(r: DrillReport): string {
  const p = r.rpo;
  if (!p || p.bytes === null) return 'unknown (the primary\'s position at the start or the copy\'s recovery point is missing)';
  const secs = p.seconds === null ? '? s' : `${p.seconds.toFixed(1)} s`;
  return `${p.bytes} bytes, ${secs} (primary ${p.primary_lsn} at the start, copy recovered to ${p.copy_lsn})`;
}

function mb(bytes: number): string {
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
