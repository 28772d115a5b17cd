/**
 * The metrics of one `pgplay run` (`--metrics FILE`), read back from its journal once it ended: the
 * result and duration, per host what failed, and what the procedure produced (a backup's time and
 * size per type, a drill's verdict, RTO and RPO). Labelled by cluster and playbook (and host, type).
 */
import { basename } from 'node:path';
import { findRun } from '../journal/reader.js';
import { buildDrillReport } from '../report/drill.js';
import { drillValues } from '../status/checks/drill.js';
import { MetricSet, writeTextfile } from './textfile.js';

export function runMetrics(stateDir: string, runId: string): MetricSet {
  const run = findRun(stateDir, runId);
  const m = new MetricSet();
  const base = { cluster: run.header.cluster, playbook: basename(run.header.playbook).replace(/\.ya?ml$/i, '') };
  const end = run.end;
  m.gauge('pgplay_run_success', 'The last run of this playbook succeeded (1) or not (0)', base, end ? end.exitCode === 0 : false);
  m.gauge('pgplay_run_exit_code', 'Exit code of the last run of this playbook', base, end?.exitCode ?? null);
  m.gauge('pgplay_run_duration_seconds', 'Duration of the last run of this playbook', base, end ? end.durationMs / 1000 : null);
  m.gauge('pgplay_run_end_timestamp_seconds', 'When the last run of this playbook ended', base, end ? Date.parse(end.time) / 1000 : null);
  for (const [host, recap] of Object.entries(end?.recap ?? {})) {
    m.gauge('pgplay_run_host_failed_steps', 'Steps that failed on this host in the last run', { ...base, host }, recap.failed + recap.unreachable);
    m.gauge('pgplay_run_host_changed_steps', 'Steps that changed this host in the last run', { ...base, host }, recap.changed);
  }
  // A pgbackrest backup step registers the backup it took (info's entry plus requested_type).
  for (const r of run.registered) {
    const v = r.value as Record<string, unknown> | null;
    if (!v || typeof v !== 'object' || !('requested_type' in v) || typeof v.stop !== 'number' || typeof v.type !== 'string') continue;
    const labels = { ...base, host: r.host, type: v.type };
    m.gauge('pgplay_run_backup_timestamp_seconds', 'Stop time of the backup the last run took, per type', labels, v.stop);
    m.gauge('pgplay_run_backup_size_bytes', 'Database size of the backup the last run took, per type', labels, typeof v.size === 'number' ? v.size : null);
  }
  if (run.header.report?.kind === 'drill') {
    const report = buildDrillReport(run, run.header.report.outputs);
    if (report) {
      const d = drillValues(report, run);
      const labels = { ...base, host: report.host };
      m.gauge('pgplay_run_drill_passed', "The drill's verdict: passed (1) or failed (0)", labels, d.passed);
      m.gauge('pgplay_run_drill_timestamp_seconds', 'When the drill finished', labels, d.finished_time);
      m.gauge('pgplay_run_drill_rto_seconds', 'RTO: restore start to the first query on the restored copy', labels, d.rto_seconds);
      m.gauge('pgplay_run_drill_rpo_seconds', 'RPO: drill start minus the last transaction the copy replayed', labels, d.rpo_seconds);
    }
  }
  return m;
}

/** Writes a run's metrics; a failure to write is a warning, never a change of the run's exit code. */
export async function writeRunMetrics(file: string, stateDir: string, runId: string, warn: (message: string) => void): Promise<void> {
  try {
    await writeTextfile(file, runMetrics(stateDir, runId).format());
  } catch (e) {
    warn(`cannot write --metrics ${file}: ${(e as Error).message}`);
  }
}
