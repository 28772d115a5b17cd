/** Values as the status table shows them: ages, sizes and thresholds taken from the inventory. */
import { parseDuration } from '../core/duration.js';
import { parseBytes } from '../expr/functions.js';

export { formatBytes } from '../actions/pgbackrest/common.js';

/** 93784 → "1d 2h 3m"; under a minute in seconds. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return [d ? `${d}d` : '', h ? `${h}h` : '', m && !d ? `${m}m` : ''].filter(Boolean).join(' ') || '0m';
}

/** An inventory duration (validated by the schema) in seconds. */
export function seconds(value: string | number, what: string): number {
  return parseDuration(value, what) / 1000;
}

/** An inventory size (validated by the schema) in bytes. */
export function bytes(value: string, what: string): number {
  const n = parseBytes(value);
  if (n === undefined) throw new Error(`${what}: not a size: ${value}`);
  return n;
}

export function epochSeconds(d: Date): number {
  return d.getTime() / 1000;
}

/** A timestamp column as pg returns it (a Date), or null. */
export function asDate(v: unknown): Date | null {
  if (v instanceof Date) return v;
  if (typeof v === 'string' && v !== '') {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}
