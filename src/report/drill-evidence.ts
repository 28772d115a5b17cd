/**
 * The drill's verdict as named checks, the shape the Markdown, JUnit and HTML reports share: each
 * piece of evidence the drill needs passed, failed, or could not run (which never counts as passed).
 */
import type { DrillReport } from './drill.js';
import { phasesText, rpoText } from './drill.js';

export type EvidenceStatus = 'passed' | 'failed' | 'could-not-run';

export interface EvidenceItem {
  name: string;
  status: EvidenceStatus;
  detail: string;
}

export function drillEvidence(r: DrillReport): EvidenceItem[] {
  const target = r.target.value ? `${r.target.type} ${r.target.value}` : r.target.type;
  const items: EvidenceItem[] = [
    {
      name: 'backup restored',
      status: r.backup.set ? 'passed' : 'could-not-run',
      detail: r.backup.set ? `${r.backup.set}${r.backup.type ? ` (${r.backup.type})` : ''}${r.backup.reason ? `, chosen because ${r.backup.reason}` : ''}` : 'no backup set was restored',
    },
    {
      name: 'target reached',
      status: r.target_reached ? 'passed' : r.proof.length ? 'failed' : 'could-not-run',
      detail: `${target}: ${r.target_reached ? 'the server log shows it reached' : 'not shown reached by the server log'}`,
    },
    {
      name: 'WAL archiving reached the repository',
      status: r.archive.reached_repository && !r.archive.archiver_failing ? 'passed' : r.archive.wal_at_start ? 'failed' : 'could-not-run',
      detail: `WAL at the start ${r.archive.wal_at_start ?? '?'}, newest in the repository ${r.archive.repository_max ?? '?'}${r.archive.archiver_failing ? ', the archiver is failing' : ''}`,
    },
    {
      name: 'recovery point known',
      status: r.recovery_point.last_transaction || r.recovery_point.replayed_to ? 'passed' : 'could-not-run',
      detail: r.recovery_point.last_transaction ?? (r.recovery_point.replayed_to ? `WAL replayed to ${r.recovery_point.replayed_to}` : 'unknown'),
    },
    {
      name: 'RTO measured',
      status: r.rto.ms !== null ? 'passed' : 'could-not-run',
      detail: r.rto.ms !== null ? `${(r.rto.ms / 1000).toFixed(1)} s from restore start to the first query: ${phasesText(r)}` : 'the copy never answered a query',
    },
    {
      name: 'RPO measured',
      status: r.rpo?.bytes !== null && r.rpo?.bytes !== undefined ? 'passed' : 'could-not-run',
      detail: r.rpo ? rpoText(r) : 'not measured',
    },
  ];
  for (const [key, label] of [['rto', 'RTO'], ['rpo', 'RPO']] as const) {
    const t = r.targets?.[key];
    if (!t) continue;
    const measured = t.measured_ms === null ? 'not measured' : `${(t.measured_ms / 1000).toFixed(1)} s`;
    items.push({ name: `${label} target ${t.target}`, status: t.met === null ? 'could-not-run' : t.met ? 'passed' : 'failed', detail: `${measured} against ${t.target}: ${t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED'}` });
  }
  for (const c of r.data_checks ?? []) items.push({ name: c.name, status: c.status, detail: c.detail });
  for (const c of r.checks) {
    items.push({
      name: `check ${c.n}: ${c.sql}`,
      status: c.ok ? 'passed' : c.error ? 'could-not-run' : 'failed',
      detail: c.error ? `error: ${c.error}` : `returned ${c.got ?? '(no row)'}${c.expect !== null ? `, expected ${c.expect}` : ''}`,
    });
  }
  const trend = r.trend;
  if (trend?.previous && trend.rto_change !== null) {
    items.push({
      name: 'RTO against the previous drill',
      status: trend.slowdown ? 'failed' : 'passed',
      detail: `${trend.rto_change >= 0 ? '+' : ''}${(trend.rto_change * 100).toFixed(0)} % against run ${trend.previous.run_id} (a slowdown beyond ${(trend.threshold * 100).toFixed(0)} % is flagged)`,
    });
  }
  items.push({ name: 'copy torn down', status: r.teardown === 'not done' ? 'failed' : 'passed', detail: r.teardown });
  return items;
}
