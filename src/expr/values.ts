/**
 * Value semantics shared by expressions and template helpers, so `eq` in a template and `==` in a
 * `when:` agree. Numbers compare numerically, also against numeric strings: PostgreSQL returns
 * bigint and numeric columns as strings, and `rows[0].count == 1` must still hold.
 */

const NUMERIC = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

export function isNumericString(v: unknown): v is string {
  return typeof v === 'string' && NUMERIC.test(v);
}

/** Python-like truthiness: false, null, undefined, 0, NaN, '', [] and {} are false. */
export function truthy(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0 && !Number.isNaN(v);
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

/** A short rendering of a value for error messages. */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 60)}...` : s;
  } catch {
    return typeName(v);
  }
}

function numericPair(a: unknown, b: unknown): [number, number] | undefined {
  if (typeof a === 'number' && typeof b === 'number') return [a, b];
  if (typeof a === 'number' && isNumericString(b)) return [a, Number(b)];
  if (isNumericString(a) && typeof b === 'number') return [Number(a), b];
  return undefined;
}

export function equals(a: unknown, b: unknown): boolean {
  const nums = numericPair(a, b);
  if (nums) return nums[0] === nums[1];
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => equals(x, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && equals(a[k], b[k]));
  }
  return false;
}

/**
 * Ordering: numbers (and numeric strings against numbers) numerically, strings lexically by code
 * point. Anything else has no order; the caller turns `undefined` into an error naming both types.
 */
export function compare(a: unknown, b: unknown): number | undefined {
  const nums = numericPair(a, b);
  if (nums) return nums[0] < nums[1] ? -1 : nums[0] > nums[1] ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * `needle in haystack`: membership in a list, substring of a string, own key of an object.
 * Returns undefined when the haystack is none of these.
 */
export function contains(haystack: unknown, needle: unknown): boolean | undefined {
  if (Array.isArray(haystack)) return haystack.some((x) => equals(x, needle));
  if (typeof haystack === 'string') {
    if (typeof needle !== 'string') return undefined;
    return haystack.includes(needle);
  }
  if (isPlainObject(haystack)) {
    if (typeof needle !== 'string' && typeof needle !== 'number') return undefined;
    return Object.hasOwn(haystack, String(needle));
  }
  return undefined;
}
