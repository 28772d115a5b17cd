/** Medians, quartiles and the Markdown table of the procedure benchmark. */

export interface Pair {
  /** Which side ran first in this pair (the order alternates, so a drift of the machine cancels out). */
  first: 'raw' | 'pgplay';
  raw: number;
  pgplay: number;
  /** The baseline checkout's time in the same round (--baseline). */
  baseline?: number;
}

export interface ProcedureResult {
  name: string;
  label: string;
  pairs: Pair[];
}

/** The q-quantile (0..1) by linear interpolation between the sorted values. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export const median = (values: number[]): number => quantile(values, 0.5);

export interface Summary {
  rawMedian: number;
  pgplayMedian: number;
  rawSpread: [number, number];
  pgplaySpread: [number, number];
  rawRange: [number, number];
  pgplayRange: [number, number];
  /** Median of the per-pair differences (pgplay - raw): what the table calls the overhead. */
  overhead: number;
  overheadSpread: [number, number];
  /** The target: within 0.3 s or 5 % of the raw median, whichever is larger. */
  allowed: number;
  met: boolean;
}

export function summarize(r: ProcedureResult): Summary {
  const raw = r.pairs.map((p) => p.raw);
  const pg = r.pairs.map((p) => p.pgplay);
  const diff = r.pairs.map((p) => p.pgplay - p.raw);
  const rawMedian = median(raw);
  const overhead = median(diff);
  const allowed = Math.max(0.3, 0.05 * rawMedian);
  return {
    rawMedian,
    pgplayMedian: median(pg),
    rawSpread: [quantile(raw, 0.25), quantile(raw, 0.75)],
    pgplaySpread: [quantile(pg, 0.25), quantile(pg, 0.75)],
    rawRange: [Math.min(...raw), Math.max(...raw)],
    pgplayRange: [Math.min(...pg), Math.max(...pg)],
    overhead,
    overheadSpread: [quantile(diff, 0.25), quantile(diff, 0.75)],
    allowed,
    met: overhead <= allowed,
  };
}

const s = (x: number): string => `${x.toFixed(2)} s`;
const signed = (x: number): string => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(2)} s`;

export function table(results: ProcedureResult[]): string {
  const lines = [
    '| procedure | raw median (p25–p75) | pgplay median (p25–p75) | overhead, median of pairs (p25–p75) | pgplay / raw | target (0.3 s or 5 %) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    if (r.pairs.length === 0) continue;
    const m = summarize(r);
    lines.push(
      `| ${r.label} | ${s(m.rawMedian)} (${m.rawSpread.map((x) => x.toFixed(2)).join('–')}) | ` +
        `${s(m.pgplayMedian)} (${m.pgplaySpread.map((x) => x.toFixed(2)).join('–')}) | ` +
        `${signed(m.overhead)} (${m.overheadSpread.map((x) => signed(x)).join(' … ')}) | ` +
        `${(m.pgplayMedian / m.rawMedian).toFixed(2)}× | ${m.met ? 'met' : 'not met'} (≤ ${m.allowed.toFixed(2)} s) |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Before (the baseline checkout) against after (pgplay), each against raw, all from the same rounds. */
export function baselineTable(results: ProcedureResult[]): string {
  const lines = [
    '| procedure | raw median | before: pgplay median, overhead (median of rounds) | after: pgplay median, overhead (median of rounds) | after − before (median of rounds, p25–p75) | after within target (0.3 s or 5 %) |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const rounds = r.pairs.filter((p) => p.baseline !== undefined);
    if (rounds.length === 0) continue;
    const raw = median(rounds.map((p) => p.raw));
    const allowed = Math.max(0.3, 0.05 * raw);
    const before = median(rounds.map((p) => p.baseline! - p.raw));
    const after = median(rounds.map((p) => p.pgplay - p.raw));
    const gain = rounds.map((p) => p.pgplay - p.baseline!);
    lines.push(
      `| ${r.label} | ${s(raw)} | ${s(median(rounds.map((p) => p.baseline!)))}, ${signed(before)} | ${s(median(rounds.map((p) => p.pgplay)))}, ${signed(after)} | ` +
        `${signed(median(gain))} (${signed(quantile(gain, 0.25))} … ${signed(quantile(gain, 0.75))}) | ${after <= allowed ? 'met' : 'not met'} (≤ ${allowed.toFixed(2)} s) |`,
    );
  }
  return lines.join('\n') + '\n';
}
