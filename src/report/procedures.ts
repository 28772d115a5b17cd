/**
 * What the shipped procedures leave behind after a run, beside the run's own output: the drill
 * report of pitr-drill.yml, and after promote.yml the change the inventory needs (the lab's own
 * inventory is rewritten; a user's inventory is theirs to edit, so pgplay says what to change).
 * Everything is read back from the run's journal, so it is exactly what the run recorded (redacted).
 */
import { findRun, type JournalRun } from '../journal/reader.js';
import { isLabPrimary, labDirOfInventory, setLabPrimary } from '../lab/roles.js';
import { buildDrillReport, drillReportPaths, formatDrillReport, writeDrillReport, type DrillReport } from './drill.js';

export interface ProcedureReports {
  drill?: { report: DrillReport; json: string; text: string };
  /** Text for the human after the run's own output. */
  notices: string[];
}

export interface PromotionFacts {
  candidate: string;
  oldPrimary?: string;
  timeline?: number;
  previousTimeline?: number;
  rebuilt: boolean;
}

/** The promotion a run performed (the `promotion` value registered by promote.yml), if any. */
export function promotionOf(run: JournalRun): PromotionFacts | undefined {
  const promoted = run.registered.findLast((r) => r.name === 'promotion');
  const value = promoted?.value as Record<string, unknown> | undefined;
  if (!promoted || !value || value.changed !== true) return undefined;
  const fence = run.registered.findLast((r) => r.name === 'fence');
  const rebuilt = run.events.some((e) => e.type === 'step-result' && e.step.startsWith('rebuild-old-primary/') && e.step.endsWith('/streaming') && e.status === 'ok');
  return {
    candidate: promoted.host,
    ...(fence ? { oldPrimary: fence.host } : {}),
    ...(typeof value.timeline === 'number' ? { timeline: value.timeline } : {}),
    ...(typeof value.previous_timeline === 'number' ? { previousTimeline: value.previous_timeline } : {}),
    rebuilt,
  };
}

export function promotionNotice(p: PromotionFacts, inventoryFile: string, labRewritten: boolean): string {
  const tl = p.timeline !== undefined ? ` (timeline ${p.previousTimeline ?? '?'} -> ${p.timeline})` : '';
  const old = p.oldPrimary ?? 'the old primary';
  const lines = [
    `TOPOLOGY CHANGED: ${p.candidate} is the primary now${tl}; ${old} ${p.rebuilt ? `streams from ${p.candidate}` : 'is stopped (fenced)'}.`,
  ];
  if (labRewritten) {
    lines.push(`  The lab's inventory ${inventoryFile} now says so; the shipped playbooks run against it as before.`);
  } else {
    lines.push(`  ${inventoryFile} still describes the old topology. Change it before the next run:`);
    lines.push(`    ${p.candidate}: role: primary (remove its upstream)`);
    if (p.oldPrimary) lines.push(`    ${p.oldPrimary}: role: standby, upstream: ${p.candidate}`);
    lines.push(`  and point other standbys' upstream at ${p.candidate}. Playbooks refuse (exit 3) while the roles contradict the servers.`);
  }
  if (!p.rebuilt && p.oldPrimary) {
    lines.push(`  To bring ${p.oldPrimary} back as a standby: pgplay run playbooks/standby-from-backup.yml -p host=${p.oldPrimary} --yes`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Writes the drill report (when the run was a drill) and follows a promotion. Check-mode runs change
 * nothing and leave no report.
 */
export async function procedureReports(request: {
  stateDir: string;
  runId: string;
  inventoryFile: string;
  check: boolean;
  reportFile?: string;
}): Promise<ProcedureReports> {
  const out: ProcedureReports = { notices: [] };
  if (request.check) return out;
  let run: JournalRun;
  try {
    run = findRun(request.stateDir, request.runId);
  } catch {
    return out;
  }
  const report = buildDrillReport(run);
  if (report) {
    const paths = drillReportPaths(request.stateDir, request.runId, request.reportFile);
    await writeDrillReport(report, paths);
    out.drill = { report, ...paths };
    out.notices.push(`\n${formatDrillReport(report)}drill report: ${paths.json} (text: ${paths.text})\n`);
  }
  const promotion = promotionOf(run);
  if (promotion) {
    const labDir = await labDirOfInventory(request.inventoryFile);
    const labFollows = labDir !== undefined && isLabPrimary(promotion.candidate);
    if (labFollows) await setLabPrimary(labDir, promotion.candidate as 'db1' | 'db2');
    out.notices.push(`\n${promotionNotice(promotion, request.inventoryFile, labFollows)}`);
  }
  return out;
}
