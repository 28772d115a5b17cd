/**
 * The report a playbook declares (its top-level `report:` key) and which of its registered values
 * feed which field. Nothing is guessed from names: a playbook without the key produces no report.
 */

/** pitr-drill.yml's report: each field names the value a step registers (`register:`). */
export interface DrillReportOutputs {
  /** The restore steps, one per kind of target; the first that ran is the restore, and its step's start begins the RTO. */
  restore: string[];
  /** Starting the restored copy. */
  started: string;
  /** Waiting until the copy is promoted and answers: its step's ok result ends the RTO. */
  ready: string;
  /** The server log lines that show how recovery went (a command's stdout). */
  proof: string;
  /** A query of the copy's last replayed transaction and timeline (rows[0].last_transaction, .timeline). */
  recovery_point: string;
  /** The user's checks (a command whose stderr carries the pgplay-check lines). */
  checks: string;
  /** Removing the copy. */
  teardown: string;
  /** Making the scratch PGDATA: registered only once the drill got as far as creating a copy. */
  copy: string;
  /** The primary's WAL segment and LSN at the drill's start (rows[0].wal, .lsn): it must reach the repository. */
  wal_at_start: string;
  /** `pgbackrest check` on the primary: archives its current WAL, fails with pgBackRest's own error. */
  archive_check: string;
  /** The primary's pg_stat_archiver (rows[0].failing, last_archived_wal, last_failed_wal, ...). */
  archiver: string;
  /** The repository's newest WAL segment after the check (archive_max). */
  repository: string;
  /** The pitr_target check: the backup set chosen for the target and why (set, reason, warning, wal). */
  target_check?: string;
  /** The data checks (data_check steps: amcheck, read, counts, sentinel), each registering `checks`. */
  data_checks?: string[];
  /** The user's command that prepared the copy before the checks: it failing fails the drill. */
  prepare?: string;
}

/** promote.yml's report: the topology change it made. */
export interface PromotionReportOutputs {
  /** The promotion (registered on the new primary; changed, timeline, previous_timeline). */
  promoted: string;
  /** The fencing of the old primary (registered on it; `unreachable: true` when its host could not be reached). */
  fenced?: string;
  /** The operator's confirmation that an old primary that could not be fenced cannot come back (registered on the new primary). */
  fence_confirmed?: string;
  /** A step (include-step/step) whose ok result on the old primary means it streams from the new one. */
  rebuilt?: string;
  /** The old primary's rejoin (rebuild_old_primary): which path it took and how long it took, as rejoin.yml reports it. */
  rejoin?: RejoinReportOutputs;
}

/** rejoin.yml's report: the steps (include-step/.../step, as reported) whose results say which path was taken and how long it took. */
export interface RejoinReportOutputs {
  /** The rewind action's step: its registered value says whether pg_rewind was possible, ran, and why not. */
  rewind: string;
  /** The fallback delta restore's step (changed when it ran). */
  restore: string;
  /** The wait until the new primary sees the host streaming: its ok result ends the rejoin. */
  streaming: string;
}

/** restore.yml's report: the cluster brought back from the repository, and the topology change. */
export interface RestoreReportOutputs {
  /** The restore steps, one per kind of target; the first that ran is the restore, and its start begins the RTO. */
  restore: string[];
  /** Waiting until the restored server is promoted and answers: its step's ok result ends the RTO. */
  ready: string;
  /** The server log lines that show how recovery went (a command's stdout). */
  proof: string;
  /** A query of the restored server's last replayed transaction and timeline (rows[0].last_transaction, .timeline). */
  recovery_point: string;
  /** The pitr_target check: the backup set chosen for the target and why. */
  target_check?: string;
  /** Keeping the previous PGDATA aside (a command whose stdout is where it went). */
  kept?: string;
  /** The new full backup on the new timeline: one registered value, or one per backup engine (the first that ran). */
  backup?: string | string[];
  /** Registered on the new primary: rows[0].read_write, .timeline, .previous_primary, .standbys. */
  primary: string;
}

export type ReportDeclaration =
  | { kind: 'drill'; outputs: DrillReportOutputs }
  | { kind: 'promotion'; outputs: PromotionReportOutputs }
  | { kind: 'rejoin'; outputs: RejoinReportOutputs }
  | { kind: 'restore'; outputs: RestoreReportOutputs };

export type ReportKind = ReportDeclaration['kind'];

/** The registered names a declaration reads, with the output field each feeds. */
export function registeredOutputs(report: ReportDeclaration): Array<{ field: string; index?: number; name: string }> {
  const out: Array<{ field: string; index?: number; name: string }> = [];
  // A rejoin report names steps, not registered values (report-declaration.ts checks them).
  if (report.kind === 'rejoin') return out;
  for (const [field, value] of Object.entries(report.outputs)) {
    if (field === 'rebuilt') continue;
    if (Array.isArray(value)) value.forEach((name, index) => out.push({ field, index, name: String(name) }));
    else if (typeof value === 'string') out.push({ field, name: value });
  }
  return out;
}
