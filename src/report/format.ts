import type { RecapCounts, RunEvent, StepStatus } from '../engine/events.js';
import { formatMs } from '../core/duration.js';

/** Shared text pieces of the human renderers, so the TTY and plain outputs say the same things. */
export const STATUS_LABEL: Record<StepStatus, string> = {
  ok: 'ok',
  changed: 'changed',
  skipped: 'skipped',
  failed: 'failed',
};

export function hostResultLine(e: Extract<RunEvent, { type: 'step-result' }>): string {
  let line = `${STATUS_LABEL[e.status].padEnd(8)} ${e.host}${e.index === undefined ? '' : ` [${itemLabel(e.index, e.item)}]`}`;
  const extras: string[] = [formatMs(e.durationMs)];
  if (e.attempts > 1) extras.push(`${e.attempts} attempts`);
  if (e.ignored) extras.push('ignored');
  line += ` (${extras.join(', ')})`;
  if (e.msg && e.status !== 'ok') line += `: ${e.msg}`;
  if (e.error?.expected) line += ` (expected ${e.error.expected})`;
  if (e.error?.hint) line += `\n    hint: ${e.error.hint}`;
  return line;
}

export function recapLines(recap: Record<string, RecapCounts>): string[] {
  const width = Math.max(4, ...Object.keys(recap).map((h) => h.length));
  return Object.entries(recap).map(
    ([host, r]) =>
      `${host.padEnd(width)}  ok=${r.ok} changed=${r.changed} skipped=${r.skipped} failed=${r.failed} unreachable=${r.unreachable}`,
  );
}

export function runEndLine(e: Extract<RunEvent, { type: 'run-end' }>): string {
  let line = `run ${e.runId} ${e.status} (exit ${e.exitCode}) in ${formatMs(e.durationMs)}${e.interruptedBy ? `: ${e.interruptedBy}` : ''}`;
  if (e.error) {
    const where = [e.error.step && `step ${e.error.step}`, e.error.host && `host ${e.error.host}`].filter(Boolean).join(', ');
    line += `\n${where ? where + ': ' : ''}${e.error.message}${e.error.expected ? ` (expected ${e.error.expected})` : ''}`;
    if (e.error.hint) line += `\n  hint: ${e.error.hint}`;
  }
  return line;
}

export function indentDiff(diff: string): string {
  return diff
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}

/** A loop's item as a result line names it: `2: app`, long or structured items shortened. */
export function itemLabel(index: number, item: unknown): string {
  const text = typeof item === 'string' ? item : JSON.stringify(item) ?? String(item);
  return `${index}: ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`;
}
