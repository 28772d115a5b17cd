/**
 * Past drills of a cluster, from the drill reports stored under <state>/drills/, oldest first, and the
 * trend of the newest against the one before it: a drill whose RTO grew beyond the inventory's
 * `drills.rtoRegression` (default 25 %) over the previous passed drill is flagged as a slowdown.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DRILL_REPORT_KIND, type DrillReport, type DrillSummary, type DrillTrend } from './drill.js';

export type { DrillSummary, DrillTrend };

export const DEFAULT_RTO_REGRESSION = 0.25;

export function drillsDir(stateDir: string): string {
  return join(stateDir, 'drills');
}

export function summarize(r: DrillReport): DrillSummary {
  const rpo = (r as DrillReport & { rpo?: { seconds?: number | null } }).rpo?.seconds;
  return {
    run_id: r.run.id,
    cluster: r.run.cluster,
    started: r.run.started,
    status: r.status,
    host: r.host,
    target: r.target.value ? `${r.target.type} ${r.target.value}` : r.target.type,
    backup_set: r.backup.set,
    rto_ms: r.rto.ms,
    rpo_s: typeof rpo === 'number' ? rpo : null,
  };
}

/** The stored drill reports (of one cluster when given), oldest first; unreadable files are skipped. */
export function listDrills(stateDir: string, cluster?: string): DrillReport[] {
  const dir = drillsDir(stateDir);
  if (!existsSync(dir)) return [];
  const out: DrillReport[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.json')) continue;
    try {
      const r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as DrillReport;
      if (r.kind === DRILL_REPORT_KIND && (cluster === undefined || r.run.cluster === cluster)) out.push(r);
    } catch {
      // a file that is not a drill report is not history
    }
  }
  return out.sort((a, b) => a.run.started.localeCompare(b.run.started));
}

/** The drill against the previous passed drill of its cluster (earlier than it). */
export function drillTrend(report: DrillReport, history: DrillReport[], threshold = DEFAULT_RTO_REGRESSION): DrillTrend {
  const previous = history.filter((h) => h.run.id !== report.run.id && h.run.started < report.run.started && h.status === 'passed').at(-1);
  const change = previous && previous.rto.ms && report.rto.ms !== null ? (report.rto.ms - previous.rto.ms) / previous.rto.ms : null;
  return { previous: previous ? summarize(previous) : null, rto_change: change, threshold, slowdown: change !== null && change > threshold };
}
