/**
 * The restore report: what a restore from the repository (playbooks/restore.yml) did and proved, built
 * from the run's journal like the drill report (recovery-evidence.ts reads the evidence the same way):
 * the host now primary and the one before, the backup set and why it was chosen, the target and the
 * server log lines that prove it was reached, the RTO (restore start to the first query on the promoted
 * server), the recovery point, the new timeline, where the previous PGDATA was kept aside, the new full
 * backup, and the standbys that follow. The playbook declares which registered values feed it
 * (`report: {kind: restore, outputs}`, model/report.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JournalRun } from '../journal/reader.js';
import type { RestoreReportOutputs } from '../model/report.js';
import type { TopologyChanged } from '../model/topology.js';
import { ran, record, recoveryEvidence, registered, reportRun, restoreOf, rtoOf, seconds, str, type ReportRun } from './recovery-evidence.js';

export const RESTORE_REPORT_KIND = 'pgplay-restore-report';

export interface RestoreReport {
  kind: typeof RESTORE_REPORT_KIND;
  version: 1;
  status: 'passed' | 'failed';
  problems: string[];
  run: ReportRun;
  /** The host restored: the primary now. */
  host: string;
  /** The inventory's primary before the restore. */
  previous_primary: string | null;
  target: { type: string; value: string | null };
  backup: { set: string | null; type: string | null; reason: string | null; warning: string | null };
  target_reached: boolean;
  proof: string[];
  rto: { ms: number | null; from: string | null; to: string | null };
  recovery_point: { last_transaction: string | null; source: 'log' | 'pg_last_xact_replay_timestamp' | null; restore_point_time: string | null; replayed_to: string | null };
  timeline: number | null;
  /** Where the previous PGDATA was renamed to (null: discarded, or there was none). */
  kept_aside: string | null;
  /** The new full backup on the new timeline. */
  new_backup: string | null;
  /** The standbys rebuilt to follow the restored primary. */
  standbys: string[];
}

function firstRow(value: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  return ran(value) ? (value.rows as Record<string, unknown>[] | undefined)?.[0] : undefined;
}

/** The report of a run of a playbook that declares a restore report; undefined when it never restored. */
export function buildRestoreReport(run: JournalRun, outputs: RestoreReportOutputs): RestoreReport | undefined {
  const restore = restoreOf(run, outputs.restore);
  if (!restore) return undefined;
  const params = run.header.params as Record<string, unknown>;
  const host = restore.record.host;
  const targetType = String(params.target ?? 'latest');
  const readyRecord = record(run, outputs.ready, host);
  const evidence = recoveryEvidence(str(registered(run, outputs.proof, host)?.stdout) ?? '', targetType, readyRecord?.value as Record<string, unknown> | undefined, registered(run, outputs.recovery_point, host));
  const chosen = outputs.target_check ? registered(run, outputs.target_check, host) : undefined;
  const kept = outputs.kept ? registered(run, outputs.kept, host) : undefined;
  const backup = outputs.backup ? (restoreOf(run, [outputs.backup].flat())?.value ?? registered(run, [outputs.backup].flat()[0]!)) : undefined;
  const primary = firstRow(registered(run, outputs.primary, host));

  const problems: string[] = [];
  if (run.end?.status === 'interrupted') problems.push('the restore was interrupted');
  else if (run.end?.error && run.end.status !== 'ok') {
    problems.push(`${run.end.error.step ? `step ${run.end.error.step}${run.end.error.host ? ` on ${run.end.error.host}` : ''} ` : ''}failed: ${run.end.error.message}`);
  }
  if (!evidence.promoted) problems.push('the restored server was not promoted');
  if (evidence.missed) problems.push(evidence.missed.replace(/^.*?(FATAL|LOG):\s*/, ''));
  else if (evidence.promoted && !evidence.targetReached) problems.push(`the server log does not show the target ${targetType} being reached`);
  if (!ran(backup) || backup.failed === true) problems.push('no new full backup was taken on the new timeline');

  return {
    kind: RESTORE_REPORT_KIND,
    version: 1,
    status: problems.length === 0 ? 'passed' : 'failed',
    problems,
    run: reportRun(run),
    host,
    previous_primary: str(primary?.previous_primary),
    target: { type: targetType, value: str(params.target_value) },
    backup: {
      set: str(restore.value.set),
      type: str(restore.value.backup_type),
      reason: ran(chosen) ? str(chosen.reason) : null,
      warning: ran(chosen) ? str(chosen.warning) : null,
    },
    target_reached: evidence.targetReached,
    proof: evidence.proof,
    rto: rtoOf(run, restore.record.step, readyRecord, host),
    recovery_point: {
      last_transaction: evidence.lastTransaction,
      source: evidence.source,
      restore_point_time: evidence.restorePointTime,
      replayed_to: evidence.replayedTo,
    },
    timeline: typeof primary?.timeline === 'number' ? primary.timeline : evidence.timeline,
    kept_aside: ran(kept) && kept.failed !== true ? str(String(kept.stdout ?? '').trim()) : null,
    new_backup: ran(backup) && backup.failed !== true ? str((backup as { label?: unknown }).label) ?? str(backup.msg) : null,
    standbys: String(primary?.standbys ?? '')
      .split(',')
      .filter((s) => s !== ''),
  };
}

/** The topology change a restore made: another host is the primary now. undefined when restored in place. */
export function restoreTopologyChange(run: JournalRun, report: RestoreReport): TopologyChanged | undefined {
  if (report.status !== 'passed' || !report.previous_primary || report.previous_primary === report.host) return undefined;
  return {
    type: 'topology-changed',
    runId: run.header.runId,
    inventory: run.header.inventory,
    primary: report.host,
    previousPrimary: report.previous_primary,
    ...(report.timeline !== null ? { timeline: report.timeline } : {}),
    previousPrimaryStreams: false,
  };
}

export function formatRestoreReport(r: RestoreReport): string {
  const target = r.target.value ? `${r.target.type} ${JSON.stringify(r.target.value)}` : r.target.type;
  const lines = [
    `RESTORE ${r.status.toUpperCase()}: cluster ${r.run.cluster} restored on ${r.host} (run ${r.run.id})`,
    `  target           ${target}: ${r.target_reached ? 'reached' : 'NOT reached'}`,
    `  backup restored  ${r.backup.set ?? '-'}${r.backup.type ? ` (${r.backup.type})` : ''}`,
    ...(r.backup.reason ? [`                   chosen because ${r.backup.reason}`] : []),
    ...(r.backup.warning ? [`  WARNING          ${r.backup.warning}`] : []),
    `  RTO              ${r.rto.ms === null ? '-' : seconds(r.rto.ms)} (restore start to the first query on the promoted server)`,
    r.recovery_point.last_transaction || !r.recovery_point.replayed_to
      ? `  recovery point   ${r.recovery_point.last_transaction ?? '- (UNKNOWN)'} (last transaction replayed${r.recovery_point.source ? `, from ${r.recovery_point.source === 'log' ? 'the server log' : 'pg_last_xact_replay_timestamp()'}` : ''})`
      : `  recovery point   WAL replayed to ${r.recovery_point.replayed_to} (no transaction replayed after the backup)`,
    ...(r.recovery_point.restore_point_time ? [`  restore point    created ${r.recovery_point.restore_point_time}`] : []),
    `  timeline         ${r.timeline ?? '-'} (new)`,
    `  previous PGDATA  ${r.kept_aside ? `kept aside in ${r.kept_aside}` : 'not kept (discard_current, or there was none)'}`,
    `  new full backup  ${r.new_backup ?? 'NOT taken'}`,
    `  primary          ${r.host}${r.previous_primary && r.previous_primary !== r.host ? ` (was ${r.previous_primary})` : ' (in place)'}; standbys following: ${r.standbys.length ? r.standbys.join(', ') : 'none'}`,
  ];
  if (r.proof.length) {
    lines.push('  server log:');
    for (const l of r.proof) lines.push(`    ${l}`);
  }
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  return lines.join('\n') + '\n';
}

/** --report FILE, else <state dir>/restores/<run id>.json; the text summary goes beside it as .txt. */
export function restoreReportPaths(stateDir: string, runId: string, flag?: string): { json: string; text: string } {
  const json = flag ?? join(stateDir, 'restores', `${runId}.json`);
  const text = json.endsWith('.json') ? `${json.slice(0, -'.json'.length)}.txt` : `${json}.txt`;
  return { json, text };
}

export async function writeRestoreReport(report: RestoreReport, paths: { json: string; text: string }): Promise<void> {
  await mkdir(dirname(paths.json), { recursive: true, mode: 0o700 });
  await writeFile(paths.json, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
  await writeFile(paths.text, formatRestoreReport(report), { mode: 0o600 });
}
