/**
 * The metrics of a `pgplay status` report (`--metrics FILE`), labelled by cluster and, where a
 * finding is about one, host. Names start with pgplay_ (a run's own metrics with pgplay_run_, so
 * both files can live in one collector directory without clashing series).
 */
import { SEVERITY_EXIT, type StatusReport } from '../status/types.js';
import { MetricSet } from './textfile.js';

const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'boolean' ? (v ? 1 : 0) : null);

export function statusMetrics(report: StatusReport): MetricSet {
  const m = new MetricSet();
  const cluster = report.cluster;
  m.gauge('pgplay_status_severity', 'Worst severity of pgplay status (0 ok, 1 warning, 2 critical)', { cluster }, SEVERITY_EXIT[report.severity]);
  for (const c of report.checks) m.gauge('pgplay_status_check_severity', 'Severity of one pgplay status check (0 ok, 1 warning, 2 critical)', { cluster, check: c.id }, SEVERITY_EXIT[c.severity]);
  m.gauge('pgplay_status_timestamp_seconds', 'When pgplay status ran', { cluster }, Date.parse(report.time) / 1000);
  const findings = (id: string) => report.checks.find((c) => c.id === id)?.findings ?? [];
  const host = (h: string | undefined) => ({ cluster, host: h ?? '' });

  for (const f of findings('hosts')) m.gauge('pgplay_host_up', 'The host answered pgplay (1) or not (0)', host(f.host), num(f.values?.reachable));
  for (const f of findings('backup-age')) {
    const v = f.values ?? {};
    if (typeof v.type !== 'string' || typeof v.age_seconds !== 'number') continue;
    const labels = { cluster, type: v.type };
    m.gauge('pgplay_backup_age_seconds', 'Age of the newest backup of this type (any: of any type)', labels, v.age_seconds);
    m.gauge('pgplay_backup_last_success_timestamp_seconds', 'Stop time of the newest backup of this type', labels, num(v.stop_time));
    m.gauge('pgplay_backup_last_size_bytes', 'Database size of the newest backup of this type', labels, num(v.size_bytes));
    m.gauge('pgplay_backup_last_repo_size_bytes', 'Repository size of the newest backup of this type', labels, num(v.repo_size_bytes));
  }
  for (const f of findings('archiving')) {
    m.gauge('pgplay_archive_failing', 'The archiver failed since its last success (pg_stat_archiver)', host(f.host), num(f.values?.failing));
    m.gauge('pgplay_archive_failures', 'pg_stat_archiver.failed_count', host(f.host), num(f.values?.failed_count));
    m.gauge('pgplay_archive_last_archived_age_seconds', 'Time since the last archived WAL segment', host(f.host), num(f.values?.last_archived_age_seconds));
    m.gauge('pgplay_archive_segments_waiting', 'Complete WAL segments not archived yet', host(f.host), num(f.values?.segments_waiting));
  }
  for (const f of findings('pitr-window')) m.gauge('pgplay_pitr_oldest_full_age_seconds', 'Age of the oldest full backup: how far back a PITR reaches', { cluster }, num(f.values?.oldest_full_age_seconds));
  for (const f of findings('verify')) {
    m.gauge('pgplay_verify_passed', 'The last repository verify passed', { cluster }, num(f.values?.passed));
    m.gauge('pgplay_verify_age_seconds', 'Age of the last repository verify', { cluster }, num(f.values?.age_seconds));
  }
  for (const f of findings('repository-space')) {
    m.gauge('pgplay_repository_available_bytes', 'Free space where the repository is', host(f.host), num(f.values?.available_bytes));
    m.gauge('pgplay_repository_next_full_bytes', 'Expected size of the next full backup (the last one)', host(f.host), num(f.values?.expected_full_bytes));
  }
  for (const f of findings('replication')) {
    m.gauge('pgplay_replication_lag_bytes', 'WAL written by the primary not yet replayed by the standby', host(f.host), num(f.values?.lag_bytes));
    m.gauge('pgplay_replication_lag_seconds', 'Time since the last replayed transaction while WAL waits', host(f.host), num(f.values?.lag_seconds));
    m.gauge('pgplay_replication_replay_paused', 'Replay is paused on the standby', host(f.host), num(f.values?.paused));
  }
  for (const f of findings('slots')) {
    if (typeof f.values?.slot !== 'string') continue;
    const labels = { ...host(f.host), slot: f.values.slot };
    m.gauge('pgplay_slot_active', 'The replication slot has a consumer', labels, num(f.values.active));
    m.gauge('pgplay_slot_retained_bytes', 'WAL the replication slot holds back', labels, num(f.values.retained_bytes));
  }
  for (const f of findings('drill')) {
    m.gauge('pgplay_drill_last_timestamp_seconds', 'When the last restore drill finished', host(f.host), num(f.values?.finished_time));
    m.gauge('pgplay_drill_passed', 'The last restore drill passed (its verdict)', host(f.host), num(f.values?.passed));
    m.gauge('pgplay_drill_rto_seconds', 'RTO of the last drill: restore start to first query on the copy', host(f.host), num(f.values?.rto_seconds));
    m.gauge('pgplay_drill_rpo_seconds', 'RPO of the last drill: drill start minus the last replayed transaction', host(f.host), num(f.values?.rpo_seconds));
  }
  for (const f of findings('clock')) m.gauge('pgplay_clock_skew_seconds', 'Host clock minus the clock of the machine running pgplay', host(f.host), num(f.values?.skew_seconds));
  return m;
}
