/**
 * What a playbook's declared report leaves behind after a real run, beside the run's own output: the
 * drill report (`report: {kind: drill}`, pitr-drill.yml), and after a promotion (`kind: promotion`,
 * promote.yml) a topology-changed event for its subscribers (the lab rewrites its own inventory) and
 * a notice of what the inventory needs. A playbook that declares no report gets none, whatever it
 * registers. Everything is read back from the run's journal, so it is exactly what the run recorded
 * (redacted).
 */
import { findRun, type JournalRun } from '../journal/reader.js';
import type { PromotionReportOutputs } from '../model/report.js';
import type { TopologyChanged, TopologyListener } from '../model/topology.js';
import { buildDrillReport, drillReportPaths, formatDrillReport, writeDrillReport, type DrillReport } from './drill.js';
import { buildRestoreReport, formatRestoreReport, restoreReportPaths, restoreTopologyChange, writeRestoreReport, type RestoreReport } from './restore.js';

export interface ProcedureReports {
  drill?: { report: DrillReport; json: string; text: string };
  restore?: { report: RestoreReport; json: string; text: string };
  topology?: TopologyChanged;
  /** Text for the human after the run's own output. */
  notices: string[];
}

/** The topology change a run made, from the values its declaration names; undefined when it promoted nothing. */
export function topologyChangeOf(run: JournalRun, outputs: PromotionReportOutputs): TopologyChanged | undefined {
  const promoted = run.registered.findLast((r) => r.name === outputs.promoted);
  const value = promoted?.value as Record<string, unknown> | undefined;
  if (!promoted || !value || value.changed !== true) return undefined;
  const fence = outputs.fenced === undefined ? undefined : run.registered.findLast((r) => r.name === outputs.fenced);
  const rebuilt =
    outputs.rebuilt !== undefined &&
    run.events.some((e) => e.type === 'step-result' && e.step === outputs.rebuilt && e.status === 'ok');
  return {
    type: 'topology-changed',
    runId: run.header.runId,
    inventory: run.header.inventory,
    primary: promoted.host,
    ...(fence ? { previousPrimary: fence.host } : {}),
    ...(typeof value.timeline === 'number' ? { timeline: value.timeline } : {}),
    ...(typeof value.previous_timeline === 'number' ? { previousTimeline: value.previous_timeline } : {}),
    previousPrimaryStreams: rebuilt,
  };
}

export function promotionNotice(p: TopologyChanged, inventoryRewritten: boolean, oldState = 'is stopped (fenced)'): string {
  const tl = p.timeline !== undefined ? ` (timeline ${p.previousTimeline ?? '?'} -> ${p.timeline})` : '';
  const old = p.previousPrimary ?? 'the old primary';
  const lines = [
    `TOPOLOGY CHANGED: ${p.primary} is the primary now${tl}; ${old} ${p.previousPrimaryStreams ? `streams from ${p.primary}` : oldState}.`,
  ];
  if (inventoryRewritten) {
    lines.push(`  The lab's inventory ${p.inventory} now says so; the shipped playbooks run against it as before.`);
  } else {
    lines.push(`  ${p.inventory} still describes the old topology. Change it before the next run:`);
    lines.push(`    ${p.primary}: role: primary (remove its upstream)`);
    if (p.previousPrimary) lines.push(`    ${p.previousPrimary}: role: standby, upstream: ${p.primary}`);
    lines.push(`  and point other standbys' upstream at ${p.primary}. Playbooks refuse (exit 3) while the roles contradict the servers.`);
  }
  if (!p.previousPrimaryStreams && p.previousPrimary) {
    lines.push(`  To bring ${p.previousPrimary} back as a standby: pgplay run standby-from-backup.yml -p host=${p.previousPrimary} --yes`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Builds the report the run's playbook declared. Check-mode runs change nothing and leave no report.
 * Each topology listener hears of a promotion; the notice says whether one of them rewrote the inventory.
 */
export async function procedureReports(request: {
  stateDir: string;
  runId: string;
  check: boolean;
  reportFile?: string;
  topologyListeners?: TopologyListener[];
}): Promise<ProcedureReports> {
  const out: ProcedureReports = { notices: [] };
  if (request.check) return out;
  let run: JournalRun;
  try {
    run = findRun(request.stateDir, request.runId);
  } catch {
    return out;
  }
  const declared = run.header.report;
  /** Each topology listener hears of the change; the notice says whether one of them rewrote the inventory. */
  const announce = async (change: TopologyChanged, oldState?: string) => {
    let rewritten = false;
    for (const listener of request.topologyListeners ?? []) rewritten = (await listener(change)).inventoryRewritten || rewritten;
    out.topology = change;
    out.notices.push(`\n${promotionNotice(change, rewritten, oldState)}`);
  };
  if (declared?.kind === 'drill') {
    const report = buildDrillReport(run, declared.outputs);
    if (report) {
      const paths = drillReportPaths(request.stateDir, request.runId, request.reportFile);
      await writeDrillReport(report, paths);
      out.drill = { report, ...paths };
      out.notices.push(`\n${formatDrillReport(report)}drill report: ${paths.json} (text: ${paths.text})\n`);
    }
  }
  if (declared?.kind === 'restore') {
    const report = buildRestoreReport(run, declared.outputs);
    if (report) {
      const paths = restoreReportPaths(request.stateDir, request.runId, request.reportFile);
      await writeRestoreReport(report, paths);
      out.restore = { report, ...paths };
      out.notices.push(`\n${formatRestoreReport(report)}restore report: ${paths.json} (text: ${paths.text})\n`);
      const change = restoreTopologyChange(run, report);
      if (change) await announce(change, 'is down and was not touched');
      else if (report.status === 'passed') out.notices.push(`${report.host} is still the primary (restored in place); the inventory needs no change.\n`);
    }
  }
  if (declared?.kind === 'promotion') {
    const change = topologyChangeOf(run, declared.outputs);
    if (change) await announce(change);
  }
  return out;
}
