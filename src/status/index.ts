/**
 * `pgplay status`: every check against one status context, each isolated (a check that throws is one
 * critical finding with the error, never a crash), the worst severity as the Nagios exit code.
 */
import { archivingCheck } from './checks/archiving.js';
import { backupAgeCheck } from './checks/backups.js';
import { clockCheck } from './checks/clock.js';
import { drillCheck } from './checks/drill.js';
import { hostsCheck } from './checks/hosts.js';
import { pitrWindowCheck } from './checks/pitr-window.js';
import { replicationCheck } from './checks/replication.js';
import { repositorySpaceCheck } from './checks/repository-space.js';
import { slotsCheck } from './checks/slots.js';
import { verifyCheck } from './checks/verify.js';
import { SEVERITY_EXIT, worst, type CheckResult, type StatusCheck, type StatusContext, type StatusReport } from './types.js';

export const STATUS_CHECKS: StatusCheck[] = [
  hostsCheck,
  backupAgeCheck,
  archivingCheck,
  pitrWindowCheck,
  verifyCheck,
  repositorySpaceCheck,
  replicationCheck,
  slotsCheck,
  drillCheck,
  clockCheck,
];

export async function runStatusChecks(ctx: StatusContext, inventoryFile: string, checks: StatusCheck[] = STATUS_CHECKS): Promise<StatusReport> {
  const results: CheckResult[] = [];
  for (const check of checks) {
    let findings;
    try {
      findings = await check.run(ctx);
    } catch (e) {
      findings = [{ severity: 'critical' as const, message: `check failed: ${(e as Error).message}` }];
    }
    results.push({ id: check.id, title: check.title, severity: worst(findings.map((f) => f.severity)), findings });
  }
  const severity = worst(results.map((r) => r.severity));
  return { cluster: ctx.inventory.cluster, inventory: inventoryFile, time: ctx.now.toISOString(), severity, exitCode: SEVERITY_EXIT[severity], checks: results };
}
