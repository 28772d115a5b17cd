/**
 * After a run: the report its playbook declares (`report:`), read back from the run's journal. The report
 * modules (procedures.ts and the drill, restore and rejoin reports it builds) load only for a playbook
 * that declares one: most runs (a backup, a standby build) declare none, and their end (the reports and
 * the evidence seal, on node's one thread while the run's helpers close) should not load them.
 */
import { findRun, type JournalRun } from '../journal/reader.js';
import type { ProcedureReportRequest, ProcedureReports } from './procedures.js';

export async function procedureReports(request: ProcedureReportRequest): Promise<ProcedureReports> {
  // Check-mode runs change nothing and leave no report.
  if (request.check) return { notices: [] };
  let run: JournalRun;
  try {
    run = findRun(request.stateDir, request.runId);
  } catch {
    return { notices: [] };
  }
  const declared = run.header.report;
  if (!declared) return { notices: [] };
  return (await import('./procedures.js')).declaredReports(run, declared, request);
}
