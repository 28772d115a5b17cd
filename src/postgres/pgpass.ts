/**
 * .pgpass lines: `hostname:port:database:username:password`, with `:` and `\` escaped by a backslash
 * in every field. libpq ignores the file unless its mode is 0600 or stricter, so callers write it with
 * PGPASS_MODE. Merging keeps the user's own lines and replaces only the ones pgplay manages.
 */
import { PgplayError } from '../core/errors.js';

export const PGPASS_MODE = 0o600;

export interface PgpassEntry {
  /** Host name or address as it appears in the conninfo (`*` matches any). */
  host: string;
  port: number | '*';
  /** `replication` matches physical replication connections; `*` matches any database. */
  database: string;
  user: string;
  password: string;
}

export function pgpassEscape(field: string): string {
  return field.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

export function pgpassLine(e: PgpassEntry): string {
  if (/[\r\n]/.test(e.password) || /[\r\n]/.test(e.user) || /[\r\n]/.test(e.host) || /[\r\n]/.test(e.database)) {
    // A newline would split the entry into two lines that libpq reads as garbage.
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `the .pgpass entry for ${e.user}@${e.host} has a line break in a field`,
      expected: 'a password and names without line breaks',
    });
  }
  const line = [e.host, String(e.port), e.database, e.user, e.password].map(pgpassEscape).join(':');
  // libpq skips lines starting with '#'; its matcher unescapes any backslashed character.
  return line.startsWith('#') ? `\\${line}` : line;
}

/** Splits a .pgpass line into its five fields, undoing the escapes; null for comments and junk. */
export function parsePgpassLine(line: string): string[] | null {
  if (line.trim() === '' || line.startsWith('#')) return null;
  const fields: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && i + 1 < line.length) {
      cur += line[i + 1];
      i++;
    } else if (c === ':' && fields.length < 4) {
      fields.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  fields.push(cur);
  return fields.length === 5 ? fields : null;
}

/**
 * The new file content: existing lines for the same host:port:database:user are replaced in place,
 * new entries are appended, every other line is kept byte for byte.
 */
export function mergePgpass(existing: string, entries: PgpassEntry[]): string {
  const keyOf = (f: string[]) => f.slice(0, 4).join('\u0000');
  const pending = new Map(entries.map((e) => [keyOf([e.host, String(e.port), e.database, e.user]), e]));
  const lines = existing === '' ? [] : existing.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const f = parsePgpassLine(line);
    const k = f && keyOf(f);
    const e = k ? pending.get(k) : undefined;
    if (e && k) {
      out.push(pgpassLine(e));
      pending.delete(k);
    } else {
      out.push(line);
    }
  }
  for (const e of pending.values()) out.push(pgpassLine(e));
  return out.length ? out.join('\n') + '\n' : '';
}
