/**
 * Recovery targets as the user writes them (pitr-drill.yml's target and target_value): which values
 * are valid for which type, and their positions in a form that can be compared with a backup's (epoch
 * milliseconds for times, 64-bit numbers for LSNs, WAL segment names).
 *
 * A time must carry its zone offset: PostgreSQL reads a time without one in the server's TimeZone,
 * and the drill's copy, the primary and the operator rarely agree on it. A wrong hour chooses the
 * wrong backup and replays to the wrong moment without any error.
 */

export const TARGET_TYPES = ['latest', 'time', 'name', 'xid', 'lsn', 'immediate'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

/** Target types that need a value. */
export const VALUED_TARGETS: readonly TargetType[] = ['time', 'name', 'xid', 'lsn'];

const TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$/i;
const TIME_WITHOUT_ZONE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?$/;

/** Epoch milliseconds of a target time with its zone offset, or undefined when it is not one. */
export function parseTargetTime(value: string): number | undefined {
  const m = TIME.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let offsetMin = 0;
  if (!/^(Z|UTC|GMT)$/i.test(zone!)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone!)!;
    offsetMin = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0));
  }
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0), frac ? Math.floor(Number(frac) * 1000) : 0);
  const date = new Date(ms);
  // Date.UTC rolls over (February 30th becomes March 2nd): such a value is a typo, not a time.
  if (date.getUTCMonth() !== Number(mo) - 1 || date.getUTCDate() !== Number(d) || Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return undefined;
  return ms - offsetMin * 60_000;
}

/** An LSN "X/Y" as a number (exact below 2^53, which 8 PB of WAL do not reach), or undefined. */
export function parseLsn(value: string): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(value.trim());
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/**
 * Why a value is not valid for the target type (with what was expected), or undefined when it is.
 * latest and immediate take no value.
 */
export function targetValueProblem(type: string, value: string): { what: string; expected: string } | undefined {
  const v = value.trim();
  switch (type) {
    case 'latest':
    case 'immediate':
      return v === '' ? undefined : { what: `is given, but target ${type} takes no value`, expected: 'no target_value (or target time, name, xid or lsn)' };
    case 'time':
      if (v === '') return { what: 'is empty, but target time needs one', expected: "a time with its zone offset, such as '2024-05-01 12:00:00+00'" };
      if (TIME_WITHOUT_ZONE.test(v)) {
        return {
          what: 'has no zone offset: PostgreSQL would read it in the server\'s TimeZone, which may not be yours',
          expected: `the same time with its zone offset, such as '${v}+00' (UTC) or '${v}+02:00'`,
        };
      }
      return parseTargetTime(v) === undefined ? { what: 'is not a time', expected: "a time with its zone offset, such as '2024-05-01 12:00:00+00'" } : undefined;
    case 'name':
      return v === '' ? { what: 'is empty, but target name needs one', expected: 'the name given to pg_create_restore_point()' } : undefined;
    case 'xid':
      return /^\d+$/.test(v) && BigInt(v) >= 3n && BigInt(v) < 1n << 64n ? undefined : { what: 'is not a transaction id', expected: 'a transaction id, such as 7421 (txid_current() or pg_current_xact_id())' };
    case 'lsn':
      return parseLsn(v) === undefined ? { what: 'is not an LSN', expected: "an LSN such as '0/3000060' (pg_current_wal_lsn())" } : undefined;
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// WAL segments
// ---------------------------------------------------------------------------------------------------

export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

/** A segment's position: its timeline and its number along the WAL (log * segments-per-log + seg). */
export interface Segment {
  timeline: number;
  number: bigint;
}

function segmentsPerLog(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

export function parseSegmentName(name: string, segmentSize: number): Segment | undefined {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
  if (!m) return undefined;
  return { timeline: parseInt(m[1]!, 16), number: BigInt(`0x${m[2]}`) * segmentsPerLog(segmentSize) + BigInt(`0x${m[3]}`) };
}

export function segmentName(s: Segment, segmentSize: number): string {
  const per = segmentsPerLog(segmentSize);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(s.timeline)}${hex(s.number / per)}${hex(s.number % per)}`;
}

/** The segment that holds an LSN. */
export function segmentOfLsn(lsn: bigint, segmentSize: number): bigint {
  return lsn / BigInt(segmentSize);
}
