/**
 * Quoting for the three places rendered values land: postgresql.conf, a POSIX shell, a libpq conninfo.
 * Each function is the single spelling of its rule, so templates and code quote the same way.
 */

/** A postgresql.conf value: numbers bare, booleans on/off, strings single-quoted ('' and \\ escaped). */
export function pgconfValue(value: unknown): string {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot write ${value} as a postgresql.conf value`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
  // List settings (shared_preload_libraries, search_path...) are one quoted, comma-separated string.
  if (Array.isArray(value)) return pgconfValue(value.map((v) => String(v)).join(','));
  throw new TypeError(`cannot write ${value === null ? 'null' : typeof value} as a postgresql.conf value`);
}

/** POSIX shell single-quoting: safe for any byte string, including quotes and newlines. */
export function shquote(value: unknown): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/**
 * A libpq conninfo value: bare when it is a plain word, otherwise single-quoted with \' and \\
 * (libpq's own rule; an empty value must be quoted too).
 */
export function conninfoValue(value: unknown): string {
  const s = String(value);
  if (s !== '' && !/[\s'\\]/.test(s)) return s;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
