/**
 * The last `pgbackrest verify` of the repository, from pgplay's run journal in the state directory:
 * the newest run of this cluster (not a plan) in which a step named `verify` ran (nightly-backup.yml's
 * verify step), whether it passed and how long ago. A failed verify is critical; none on record, or
 * one older than backup.maxAge.full, is a warning (this state directory may not be the scheduler's).
 * With backup.tool barman it is `barman check --nagios` on the repository host, run now (barman.ts).
 */
import { stepResults } from '../../journal/reader.js';
import { epochSeconds, formatAge, seconds } from '../format.js';
import type { StatusCheck } from '../types.js';
import { barmanCheckFinding } from './barman.js';

export const verifyCheck: StatusCheck = {
  id: 'verify',
  title: 'Last repository verify (from the run journal)',
  async run(ctx) {
    // Barman has no verify run in the journal: its own check of the server, run now, is the repository's check.
    if (ctx.inventory.backup?.tool === 'barman') return [await barmanCheckFinding(ctx)];
    for (const run of ctx.journalRuns()) {
      const result = stepResults(run).findLast((e) => (e.step === 'verify' || e.step.endsWith('/verify')) && e.status !== 'skipped');
      if (!result) continue;
      const age = epochSeconds(ctx.now) - epochSeconds(new Date(result.time));
      const limit = seconds(ctx.inventory.backup?.maxAge?.full ?? '8d', 'backup.maxAge.full');
      const passed = result.status !== 'failed';
      const values = { passed, age_seconds: Math.round(age), run: run.header.runId };
      if (!passed) return [{ severity: 'critical', host: result.host, message: `verify failed ${formatAge(age)} ago in run ${run.header.runId}: ${result.error?.message ?? result.msg ?? 'no message'}`, values }];
      return [{ severity: age > limit ? 'warning' : 'ok', host: result.host, message: `verify passed ${formatAge(age)} ago in run ${run.header.runId}${age > limit ? `, more than ${formatAge(limit)}` : ''}`, values }];
    }
    return [{ severity: 'warning', message: 'no verify on record in this state directory (nightly-backup.yml runs one)', values: { passed: null, age_seconds: null } }];
  },
};
