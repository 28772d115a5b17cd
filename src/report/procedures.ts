/**
 * What a playbook's declared report leaves behind after a real run, beside the run's own output: the
 * drill report (`report: {kind: drill}`, pitr-drill.yml), and after a promotion (`kind: promotion`,
 * promote.yml) a topology-changed event for its subscribers (the lab rewrites its own inventory) and
 * a notice of what the inventory needs. A playbook that declares no report gets none, whatever it
 * registers. Everything is read back from the run's journal, so it is exactly what the run recorded
 * (redacted).
 */
import type { JournalRun } from '../journal/reader.js';
import { parseCacheIn } from '../load/parse-cache.js';
import { BUILD_STAMP } from '../schema/build-stamp.js';
import type { PromotionReportOutputs, ReportDeclaration } from '../model/report.js';
import type { TopologyChanged, TopologyListener } from '../model/topology.js';
import { buildDrillReport, formatDrillReport, type DrillReport } from './drill.js';
import { drillReportPaths, writeDrillReport } from './drill-files.js';
import { drillTargets, inventoryDrillSettings } from './drill-measures.js';
import { DEFAULT_RTO_REGRESSION, drillTrend, listDrills, summarize } from './drill-history.js';
import { buildRestoreReport, formatRestoreReport, restoreReportPaths, restoreTopologyChange, writeRestoreReport, type RestoreReport } from './restore.js';
import { buildRejoinReport, formatRejoinReport, writeRejoinReport, type RejoinReport } from './rejoin.js';

export interface ProcedureReportRequest {
  stateDir: string;
  runId: string;
  check: boolean;
  reportFile?: string;
  topologyListeners?: TopologyListener[];
}

export interface ProcedureReports {
  drill?: { report: DrillReport; json: string; text: string; markdown: string; junit: string; html: string };
  restore?: { report: RestoreReport; json: string; text: string };
  topology?: TopologyChanged;
  /** A rejoin's report; written to --report FILE when given (JSON). */
  rejoin?: { report: RejoinReport; json?: string };
  /** Text for the human after the run's own output. */
  notices: string[];
}

/** The topology change a run made, from the values its declaration names; undefined when it promoted nothing. */
export function topologyChangeOf(run: JournalRun, outputs: PromotionReportOutputs): TopologyChanged | undefined {
  const promoted = run.registered.findLast((r) => r.name === outputs.promoted);
  const value = promoted?.value as Record<string, unknown> | undefined;
  if (!promoted || !value || value.changed !== true) return undefined;
  const fence = outputs.fenced === undefined ? undefined : run.registered.findLast((r) => r.name === outputs.fenced);
  const fenceValue = fence?.value as Record<string, unknown> | undefined;
  const confirmation = outputs.fence_confirmed === undefined ? undefined : run.registered.findLast((r) => r.name === outputs.fence_confirmed);
  const confirmed = (confirmation?.value as Record<string, unknown> | undefined) ?? {};
  const fencing: TopologyChanged['fencing'] = !fenceValue
    ? undefined
    : fenceValue.unreachable === true
      ? {
          state: 'impossible',
          reason: String(fenceValue.unreachable_reason ?? fenceValue.msg ?? ''),
          // The confirmation step ran (not skipped) and held: a refusal stops the run before any promotion.
          confirmedByOperator: confirmed.skipped === false && confirmed.failed === false,
        }
      : { state: 'fenced' };
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
    ...(fencing ? { fencing } : {}),
  };
}

export function promotionNotice(p: TopologyChanged, inventoryRewritten: boolean, notStreaming = 'is stopped (fenced)'): string {
  const tl = p.timeline !== undefined ? ` (timeline ${p.previousTimeline ?? '?'} -> ${p.timeline})` : '';
  const old = p.previousPrimary ?? 'the old primary';
  const impossible = p.fencing?.state === 'impossible' ? p.fencing : undefined;
  const oldState = p.previousPrimaryStreams ? `streams from ${p.primary}` : impossible ? 'could not be fenced' : notStreaming;
  const lines = [`TOPOLOGY CHANGED: ${p.primary} is the primary now${tl}; ${old} ${oldState}.`];
  if (impossible) {
    lines.push(`  FENCING IMPOSSIBLE: ${old} could not be reached (${impossible.reason}).`);
    lines.push(
      impossible.confirmedByOperator
        ? `  The operator confirmed that ${old} cannot come back (-p old_primary=down). It must not start as it is: rebuild it as a standby of ${p.primary} first.`
        : `  Nobody confirmed that ${old} cannot come back: make sure it cannot before anything else.`,
    );
  }
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
 * Builds the report the run's playbook declared (run-reports.ts calls it only when it declares one).
 * Each topology listener hears of a promotion; the notice says whether one of them rewrote the inventory.
 */
export async function declaredReports(run: JournalRun, declared: ReportDeclaration, request: ProcedureReportRequest): Promise<ProcedureReports> {
  const out: ProcedureReports = { notices: [] };
  /** Each topology listener hears of the change; the notice says whether one of them rewrote the inventory. */
  const announce = async (change: TopologyChanged, oldState?: string) => {
    let rewritten = false;
    for (const listener of request.topologyListeners ?? []) rewritten = (await listener(change)).inventoryRewritten || rewritten;
    out.topology = change;
    out.notices.push(`\n${promotionNotice(change, rewritten, oldState)}`);
  };
  if (declared.kind === 'drill') {
    const report = buildDrillReport(run, declared.outputs);
    if (report) {
      const earlier = listDrills(request.stateDir, report.run.cluster);
      const settings = await inventoryDrillSettings(run.header.inventory, parseCacheIn(request.stateDir, BUILD_STAMP));
      report.trend = drillTrend(report, earlier, settings.rtoRegression ?? DEFAULT_RTO_REGRESSION);
      report.targets = drillTargets(settings, report.rto.ms, report.rpo);
      const history = [...earlier.filter((d) => d.run.id !== report.run.id), report].map(summarize);
      // The stored copy (history, evidence) always; the --report files besides, when asked for.
      const stored = drillReportPaths(request.stateDir, request.runId);
      await writeDrillReport(report, stored, history);
      const paths = request.reportFile ? drillReportPaths(request.stateDir, request.runId, request.reportFile) : stored;
      if (paths !== stored) await writeDrillReport(report, paths, history);
      out.drill = { report, ...paths };
      out.notices.push(`\n${formatDrillReport(report)}drill report: ${paths.json} (also .txt, .md, .junit.xml, .html beside it)\n`);
    }
  }
  if (declared.kind === 'rejoin') {
    const report = buildRejoinReport(run, declared.outputs);
    if (report) {
      if (request.reportFile) await writeRejoinReport(report, request.reportFile);
      out.rejoin = { report, ...(request.reportFile ? { json: request.reportFile } : {}) };
      out.notices.push(`\n${formatRejoinReport(report)}${request.reportFile ? `rejoin report: ${request.reportFile}\n` : ''}`);
    }
  }
  if (declared.kind === 'restore') {
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
  if (declared.kind === 'promotion') {
    const change = topologyChangeOf(run, declared.outputs);
    if (change) {
      await announce(change);
      const rejoin = declared.outputs.rejoin ? buildRejoinReport(run, declared.outputs.rejoin) : undefined;
      if (rejoin) out.notices.push(formatRejoinReport(rejoin));
    }
  }
  return out;
}
