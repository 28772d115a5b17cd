/**
 * libpq connection strings for primary_conninfo. A password never goes into one: it would land in
 * postgresql.auto.conf / recovery.conf, in pg_stat_wal_receiver and in every diff pgplay shows. The
 * password lives in a .pgpass file (see pgpass.ts) that libpq reads through `passfile`.
 */
import { PgplayError } from '../core/errors.js';
import { conninfoValue } from '../render/quote.js';

export { conninfoValue };

export interface ConninfoInput {
  host: string;
  port: number;
  user: string;
  /** Shows up as application_name in the upstream's pg_stat_replication; pgplay uses the host name. */
  applicationName?: string;
  sslmode?: 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  /** Path of the .pgpass file holding the password (libpq's passfile, PostgreSQL 10+). */
  passfile?: string;
  dbname?: string;
  connectTimeout?: number;
  /** Further libpq keywords; `password` is refused. */
  extra?: Record<string, string | number>;
}

/** Keywords that carry a secret; none of them may appear in a conninfo pgplay writes. */
const SECRET_KEYWORDS = new Set(['password', 'sslpassword']);

export function buildConninfo(input: ConninfoInput): string {
  const pairs: [string, string | number][] = [
    ['host', input.host],
    ['port', input.port],
    ['user', input.user],
  ];
  if (input.dbname !== undefined) pairs.push(['dbname', input.dbname]);
  if (input.applicationName !== undefined) pairs.push(['application_name', input.applicationName]);
  if (input.sslmode !== undefined) pairs.push(['sslmode', input.sslmode]);
  if (input.passfile !== undefined) pairs.push(['passfile', input.passfile]);
  if (input.connectTimeout !== undefined) pairs.push(['connect_timeout', input.connectTimeout]);
  for (const [k, v] of Object.entries(input.extra ?? {})) {
    if (SECRET_KEYWORDS.has(k.toLowerCase())) {
      throw new PgplayError({
        code: 'SEMANTIC',
        message: `a connection string may not carry "${k}"`,
        expected: 'the password in a .pgpass file (replication.password is written there with mode 0600)',
      });
    }
    if (!/^[a-z_]+$/.test(k)) {
      throw new PgplayError({ code: 'SEMANTIC', message: `"${k}" is not a libpq keyword`, expected: 'lower-case letters and _' });
    }
    pairs.push([k, v]);
  }
  return pairs.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(' ');
}

/**
 * Parses a keyword/value conninfo (libpq's rules: whitespace around '=', single-quoted values with
 * backslash escapes). Returns null when the text is not well formed. URIs are handled separately.
 */
export function parseConninfo(text: string): Map<string, string> | null {
  const out = new Map<string, string>();
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    skipWs();
    if (i >= n) return out;
    const start = i;
    while (i < n && text[i] !== '=' && !/\s/.test(text[i]!)) i++;
    const key = text.slice(start, i);
    skipWs();
    if (text[i] !== '=' || key === '') return null;
    i++;
    skipWs();
    let value = '';
    if (text[i] === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i]!;
        if (c === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return null;
    } else {
      while (i < n && !/\s/.test(text[i]!)) {
        if (text[i] === '\\' && i + 1 < n) {
          value += text[i + 1];
          i += 2;
        } else {
          value += text[i];
          i++;
        }
      }
    }
    out.set(key, value);
  }
}

/**
 * Whether a connection string (keyword/value or postgres:// URI) carries a password. Used to refuse
 * a user-supplied primary_conninfo before it is written anywhere.
 */
export function conninfoHasSecret(text: string): boolean {
  const trimmed = text.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    const authority = trimmed.replace(/^postgres(ql)?:\/\//i, '').split(/[/?#]/, 1)[0] ?? '';
    if (authority.includes('@') && authority.slice(0, authority.lastIndexOf('@')).includes(':')) return true;
    const query = trimmed.includes('?') ? trimmed.slice(trimmed.indexOf('?') + 1) : '';
    return query.split('&').some((kv) => SECRET_KEYWORDS.has(decodeURIComponent(kv.split('=')[0] ?? '').toLowerCase()));
  }
  const parsed = parseConninfo(trimmed);
  // Unparseable text is treated as suspect: better to refuse than to write a secret to disk.
  if (!parsed) return /password/i.test(trimmed);
  return [...parsed.keys()].some((k) => SECRET_KEYWORDS.has(k.toLowerCase()));
}

/** Throws when a user-supplied conninfo carries a password. */
export function assertNoSecretInConninfo(text: string, what = 'primary_conninfo'): void {
  if (conninfoHasSecret(text)) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `${what} must not contain a password`,
      expected: 'host, port, user, application_name and passfile; the password goes in .pgpass (mode 0600)',
      hint: 'set replication.password to {env: NAME} or {file: PATH}; pgplay writes it to .pgpass',
    });
  }
}
