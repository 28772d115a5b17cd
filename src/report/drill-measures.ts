/**
 * What a drill measured, beyond pass or fail: the RTO in phases (restore, recovery, first query) with
 * the bytes restored and the throughput; the RPO as the distance between the primary's WAL position
 * and time at the drill's start and the copy's recovery point; and both against the inventory's
 * targets (`drills: {rto: 15m, rpo: 5m}`), met or missed.
 *
 * Phases, which add up to the RTO:
 * - restore: the restore step, start to result (pgBackRest or the base backup copying files);
 * - recovery: from the restore's end to the moment the server log says archive recovery completed
 *   (the copy's settings, its start, WAL replay to the target and the promotion);
 * - first query: from there to the first query answered by the promoted copy.
 * When the log's time cannot be read, recovery runs to the first query and first query is unknown.
 */
import { parseDuration } from '../core/duration.js';
import type { ParseCache } from '../load/parse-cache.js';
import { loadYamlFileCached } from '../load/yaml.js';
import type { RunEvent } from '../engine/events.js';
import type { JournalRun } from '../journal/reader.js';
import { parseLsn } from '../postgres/recovery-target.js';
import { ran, str, type Registered } from './recovery-evidence.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

export interface RtoPhases {
  restore_ms: number | null;
  recovery_ms: number | null;
  first_query_ms: number | null;
  /** The database size of the restored backup set (what the restore wrote into an empty PGDATA). */
  bytes_restored: number | null;
  /** bytes_restored over the restore phase. */
  restore_bytes_per_s: number | null;
}

export interface Rpo {
  /** The primary's WAL position and clock when the drill started. */
  primary_lsn: string | null;
  primary_time: string | null;
  /** The copy's recovery point: the last WAL record replayed, and the last transaction's commit time. */
  copy_lsn: string | null;
  copy_time: string | null;
  /** WAL bytes the primary had at the start and the copy does not: 0 when the copy replayed past the start. */
  bytes: number | null;
  /** Seconds of commits between the copy's last transaction and the drill's start: 0 when nothing is missing. */
  seconds: number | null;
}

export interface DrillTarget {
  /** As written in the inventory (15m). */
  target: string;
  target_ms: number;
  measured_ms: number | null;
  /** null: not measured, so neither met nor missed. */
  met: boolean | null;
}

export interface DrillTargets {
  rto: DrillTarget | null;
  rpo: DrillTarget | null;
}

/** The server log's timestamp at the start of a line (log_line_prefix %m or %t), when it parses. */
export function logTime(line: string): number | undefined {
  const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([A-Z]{2,5}|[+-]\d\d(?::?\d\d)?)\b/.exec(line);
  if (!m) return undefined;
  const zone = m[2]!;
  const iso = `${m[1]!.replace(' ', 'T')}${/^(UTC|GMT)$/.test(zone) ? 'Z' : /^[+-]/.test(zone) ? (zone.length === 3 ? `${zone}:00` : zone.includes(':') ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`) : ''}`;
  // A zone abbreviation other than UTC/GMT is ambiguous: no time rather than a wrong one.
  if (!/(Z|[+-]\d\d:\d\d)$/.test(iso)) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

function stepResult(run: JournalRun, step: string | undefined, host: string): StepResult | undefined {
  return run.events.find((e): e is StepResult => e.type === 'step-result' && step !== undefined && e.step === step && e.host === host);
}

export function rtoPhases(
  run: JournalRun,
  restore: { record: Registered; value: Record<string, unknown> } | undefined,
  rto: { ms: number | null; from: string | null; to: string | null },
  proof: string[],
): RtoPhases {
  const host = restore?.record.host ?? '';
  const restored = stepResult(run, restore?.record.step, host);
  const from = rto.from ? Date.parse(rto.from) : undefined;
  const to = rto.to ? Date.parse(rto.to) : undefined;
  const restoreEnd = restored ? Date.parse(restored.time) : undefined;
  const promotedLine = proof.filter((l) => /archive recovery complete|selected new timeline/.test(l)).map(logTime).filter((t): t is number => t !== undefined).at(-1);
  // The log's clock is the drill host's: kept within the RTO's bounds.
  const promoted = promotedLine !== undefined && restoreEnd !== undefined && to !== undefined ? Math.min(Math.max(promotedLine, restoreEnd), to) : undefined;
  const backup = ran(restore?.value) ? (restore!.value.backup as { size?: unknown } | null | undefined) : undefined;
  const bytes = typeof backup?.size === 'number' && backup.size > 0 ? backup.size : null;
  const restoreMs = from !== undefined && restoreEnd !== undefined ? restoreEnd - from : null;
  return {
    restore_ms: restoreMs,
    recovery_ms: restoreEnd !== undefined && to !== undefined ? (promoted ?? to) - restoreEnd : null,
    first_query_ms: promoted !== undefined && to !== undefined ? to - promoted : null,
    bytes_restored: bytes,
    restore_bytes_per_s: bytes !== null && restoreMs ? Math.round((bytes * 1000) / restoreMs) : null,
  };
}

/** start: the primary's row at the drill's start (lsn, at); point: the copy's (replay_lsn); lastTransaction: the recovery point's time. */
export function rpoOf(start: Record<string, unknown> | undefined, point: Record<string, unknown> | undefined, lastTransaction: string | null, replayedTo: string | null): Rpo {
  const primaryLsn = str(start?.lsn);
  const primaryTime = str(start?.at);
  const copyLsn = str(point?.replay_lsn) ?? replayedTo;
  const a = primaryLsn ? parseLsn(primaryLsn) : undefined;
  const b = copyLsn ? parseLsn(copyLsn) : undefined;
  const bytes = a !== undefined && b !== undefined ? (b >= a ? 0 : Number(a - b)) : null;
  const at = primaryTime ? Date.parse(primaryTime.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')) : NaN;
  const last = lastTransaction ? Date.parse(lastTransaction.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00').replace(/ UTC$/, 'Z')) : NaN;
  // Nothing the primary had at the start is missing: no data lost, whatever the last commit's age.
  const seconds = bytes === 0 ? 0 : Number.isNaN(at) || Number.isNaN(last) ? null : Math.max(0, (at - last) / 1000);
  return { primary_lsn: primaryLsn, primary_time: primaryTime, copy_lsn: copyLsn, copy_time: lastTransaction, bytes, seconds };
}

function judge(target: { text: string; ms: number } | undefined, measured: number | null): DrillTarget | null {
  if (!target) return null;
  return { target: target.text, target_ms: target.ms, measured_ms: measured, met: measured === null ? null : measured <= target.ms };
}

export function drillTargets(targets: { rto?: { text: string; ms: number }; rpo?: { text: string; ms: number } }, rtoMs: number | null, rpo: Rpo): DrillTargets {
  return { rto: judge(targets.rto, rtoMs), rpo: judge(targets.rpo, rpo.seconds === null ? null : Math.round(rpo.seconds * 1000)) };
}

/** "met", "MISSED" or "not measured", for the text formats. */
export function targetWord(t: DrillTarget): string {
  return t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED';
}

/** The inventory's `drills:` settings a drill report is judged by. */
export interface InventoryDrillSettings {
  rto?: { text: string; ms: number };
  rpo?: { text: string; ms: number };
  /** drills.rtoRegression as a fraction (the inventory gives a percent). */
  rtoRegression?: number;
}

/**
 * The inventory's drills.rto, drills.rpo and drills.rtoRegression, read from the file the run used (the
 * run validated them) through the state directory's parse cache (`cache`), where the run left that text's
 * data: three keys are not worth loading the YAML library and parsing the file again after every drill.
 * Anything unreadable now (moved, edited since) gives no setting rather than a wrong one.
 */
export async function inventoryDrillSettings(inventoryFile: string, cache: ParseCache | undefined): Promise<InventoryDrillSettings> {
  let drills: { rto?: unknown; rpo?: unknown; rtoRegression?: unknown } | undefined;
  try {
    drills = (await loadYamlFileCached<{ drills?: typeof drills } | null>(inventoryFile, cache)).doc.data?.drills;
  } catch {
    return {};
  }
  const out: InventoryDrillSettings = {};
  // Each setting on its own: one that no longer reads leaves the others as they are.
  for (const key of ['rto', 'rpo'] as const) {
    const v = drills?.[key];
    try {
      if (typeof v === 'string' || typeof v === 'number') out[key] = { text: String(v), ms: parseDuration(v, `drills.${key}`) };
    } catch {
      // no target rather than a wrong one
    }
  }
  const pct = drills?.rtoRegression;
  if (typeof pct === 'number' && pct >= 0) out.rtoRegression = pct / 100;
  return out;
}
