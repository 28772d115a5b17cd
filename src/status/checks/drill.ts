/**
 * The last restore drill (a run of a playbook that declares a drill report, pitr-drill.yml), rebuilt
 * from pgplay's run journal as `--report` builds it: its verdict, age against drills.maxAge, RTO and
 * recovery point. A failed or too old drill is critical; none on record a warning (this state
 * directory may not be the one the drills ran from).
 */
import type { JournalRun } from '../../journal/reader.js';
import { buildDrillReport, type DrillReport } from '../../report/drill.js';
import { epochSeconds, formatAge, seconds } from '../format.js';
import type { StatusCheck } from '../types.js';

export const drillCheck: StatusCheck = {
  id: 'drill',
  title: 'Last restore drill (drills.maxAge)',
  async run(ctx) {
    const limit = seconds(ctx.inventory.drills?.maxAge ?? '35d', 'drills.maxAge');
    for (const run of ctx.journalRuns()) {
      const declared = run.header.report;
      if (declared?.kind !== 'drill' || !run.end) continue;
      const report = buildDrillReport(run, declared.outputs);
      if (!report) continue;
      const drill = drillValues(report, run);
      const age = epochSeconds(ctx.now) - drill.finished_time;
      const values = { ...drill, age_seconds: Math.round(age), run: report.run.id };
      const problems: string[] = [];
      if (report.status !== 'passed') problems.push(`failed: ${report.problems[0] ?? 'see its report'}`);
      if (age > limit) problems.push(`older than drills.maxAge ${formatAge(limit)}`);
      return [
        {
          severity: problems.length ? 'critical' : 'ok',
          host: report.host,
          message: `drill ${report.run.id} ${formatAge(age)} ago${problems.length ? `: ${problems.join('; ')}` : `: passed, RTO ${values.rto_seconds ?? '?'}s`}`,
          values,
        },
      ];
    }
    return [{ severity: 'warning', message: 'no restore drill on record in this state directory (pitr-drill.yml)', values: { passed: null, age_seconds: null } }];
  },
};

/**
 * What a drill measured, for status and metrics: when it finished, its verdict, the RTO, and the RPO
 * (the drill's start minus the last transaction the copy replayed: the data a restore at that
 * moment would have lost).
 */
export function drillValues(report: DrillReport, run: JournalRun) {
  const finished = Date.parse(report.run.finished ?? run.end?.time ?? report.run.started) / 1000;
  const last = report.recovery_point.last_transaction;
  return {
    passed: report.status === 'passed',
    finished_time: Math.round(finished),
    rto_seconds: report.rto.ms === null ? null : report.rto.ms / 1000,
    rpo_seconds: last ? Math.max(0, (Date.parse(report.run.started) - Date.parse(last)) / 1000) : null,
  };
}
