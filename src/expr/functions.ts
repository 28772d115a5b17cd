import { contains, describe, isNumericString, truthy, typeName } from './values.js';

/** Raised by a function for a bad argument; the evaluator adds the expression text and column. */
export class ArgumentError extends Error {
  constructor(
    readonly argIndex: number,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

interface FunctionDef {
  min: number;
  max: number;
  /** defined() and default() are evaluated by the evaluator itself: their first argument is lenient. */
  impl?: (args: unknown[], name: string) => unknown;
}

function str(args: unknown[], i: number, name: string): string {
  const v = args[i];
  if (typeof v !== 'string') throw new ArgumentError(i, `${name}() expects a string, got ${typeName(v)} ${describe(v)}`);
  return v;
}

const TRUE_WORDS = new Set(['true', 'on', 'yes', 'y', 't', '1']);
const FALSE_WORDS = new Set(['false', 'off', 'no', 'n', 'f', '0', '']);

const TABLE: Record<string, FunctionDef> = {
  length: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'string' || Array.isArray(v)) return v.length;
      if (typeof v === 'object' && v !== null) return Object.keys(v).length;
      throw new ArgumentError(0, `length() expects a string, list or object, got ${typeName(v)} ${describe(v)}`);
    },
  },
  int: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (isNumericString(v)) return Math.trunc(Number(v));
      throw new ArgumentError(0, `int() cannot convert ${typeName(v)} ${describe(v)} to a number`);
    },
  },
  float: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (isNumericString(v)) return Number(v);
      throw new ArgumentError(0, `float() cannot convert ${typeName(v)} ${describe(v)} to a number`);
    },
  },
  string: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
      return JSON.stringify(v);
    },
  },
  bool: {
    min: 1,
    max: 1,
    // PostgreSQL's spellings (on/off, t/f, yes/no) count, since SHOW and psql return them.
    impl: ([v]) => {
      if (typeof v === 'string') {
        const w = v.trim().toLowerCase();
        if (TRUE_WORDS.has(w)) return true;
        if (FALSE_WORDS.has(w)) return false;
        throw new ArgumentError(0, `bool() cannot convert ${describe(v)} to a boolean`, 'use true/false, on/off, yes/no, 1/0');
      }
      return truthy(v);
    },
  },
  lower: { min: 1, max: 1, impl: (a, n) => str(a, 0, n).toLowerCase() },
  upper: { min: 1, max: 1, impl: (a, n) => str(a, 0, n).toUpperCase() },
  trim: { min: 1, max: 1, impl: (a, n) => str(a, 0, n).trim() },
  contains: {
    min: 2,
    max: 2,
    impl: ([hay, needle]) => {
      const r = contains(hay, needle);
      if (r === undefined) {
        throw new ArgumentError(0, `contains() cannot look for ${typeName(needle)} in ${typeName(hay)} ${describe(hay)}`);
      }
      return r;
    },
  },
  // split(s) gives the words of s (runs of whitespace); split(s, sep) the parts between each sep. For
  // what readers print: int(split(du.stdout)[0]) is the size `du -sk` prints before the path.
  split: {
    min: 1,
    max: 2,
    impl: (a, n) => {
      const s = str(a, 0, n);
      if (a.length === 1) return s.trim() === '' ? [] : s.trim().split(/\s+/);
      const sep = str(a, 1, n);
      if (sep === '') throw new ArgumentError(1, 'split() needs a separator that is not empty', 'leave it out to split on whitespace');
      return s.split(sep);
    },
  },
  startswith: { min: 2, max: 2, impl: (a, n) => str(a, 0, n).startsWith(str(a, 1, n)) },
  endswith: { min: 2, max: 2, impl: (a, n) => str(a, 0, n).endsWith(str(a, 1, n)) },
  matches: {
    min: 2,
    max: 2,
    impl: (a, n) => {
      const s = str(a, 0, n);
      const pattern = str(a, 1, n);
      let re: RegExp;
      try {
        re = new RegExp(pattern);
      } catch (e) {
        throw new ArgumentError(1, `matches() got an invalid regular expression: ${(e as Error).message}`);
      }
      return re.test(s);
    },
  },
  defined: { min: 1, max: 1 },
  default: { min: 2, max: 2 },
  lsn: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
      const n = typeof v === 'string' ? parseLsn(v) : undefined;
      if (n === undefined) {
        throw new ArgumentError(
          0,
          `lsn() expects a PostgreSQL LSN such as '0/3000060', got ${typeName(v)} ${describe(v)}`,
          v === null ? 'pg_last_wal_replay_lsn() and friends return null on a primary or before recovery starts' : undefined,
        );
      }
      return n;
    },
  },
  bytes: {
    min: 1,
    max: 1,
    impl: ([v]) => {
      if (typeof v === 'number' && Number.isFinite(v)) return v;
      const n = typeof v === 'string' ? parseBytes(v) : undefined;
      if (n === undefined) {
        throw new ArgumentError(0, `bytes() expects a size such as '16MB', got ${typeName(v)} ${describe(v)}`, 'units: B, kB, MB, GB, TB (1024-based, as in PostgreSQL)');
      }
      return n;
    },
  },
};

export const FUNCTION_NAMES: readonly string[] = Object.keys(TABLE);

export function functionArity(name: string): { min: number; max: number } | undefined {
  const def = Object.hasOwn(TABLE, name) ? TABLE[name] : undefined;
  return def ? { min: def.min, max: def.max } : undefined;
}

export function callFunction(name: string, args: unknown[]): unknown {
  const impl = TABLE[name]!.impl!;
  return impl(args, name);
}

/** '16/B374D848' → bytes since the start of WAL: high 32 bits before the slash, low 32 after. */
export function parseLsn(text: string): number | undefined {
  const m = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/.exec(text);
  if (!m) return undefined;
  return parseInt(m[1]!, 16) * 2 ** 32 + parseInt(m[2]!, 16);
}

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4, pb: 1024 ** 5 };

/** '16MB' → 16777216. 1024-based like PostgreSQL's memory units; a bare number means bytes. */
export function parseBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toLowerCase();
  const factor = unit === '' ? 1 : UNITS[unit];
  if (factor === undefined) return undefined;
  return Math.round(Number(m[1]) * factor);
}
