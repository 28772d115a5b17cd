/**
 * Helpers for the actions' break-glass export (Action.exportShell): a file written atomically with its
 * mode and owner, a command as another OS user, a psql statement with its parameters as SQL literals.
 * Every value is quoted by the one shell-quoting function; secrets never pass through here as values
 * (the pgpass action writes an environment reference, and the export refuses a text holding a secret).
 */
import type { Host } from '../model/inventory.js';
import { statusShell } from '../postgres/service.js';
import { shQuote } from '../transports/quote.js';

/** A word for the script: bare when plainly safe (easier to review), else single-quoted. */
export function word(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : shQuote(value);
}

export function commandLine(argv: string[], asUser?: string): string {
  const line = argv.map(word).join(' ');
  return asUser && asUser !== 'root' ? `runuser -u ${word(asUser)} -- ${line}` : line;
}

/** A here-document delimiter that no line of the content is. */
function delimiter(content: string): string {
  const lines = new Set(content.split('\n'));
  let d = 'PGPLAY_EOF';
  for (let i = 1; lines.has(d); i++) d = `PGPLAY_EOF_${i}`;
  return d;
}

/** The lines that write a file whole: a temp file beside it, its mode and owner, then an atomic rename. */
export function writeFileLines(path: string, content: string, o: { mode?: number; owner?: string; group?: string } = {}): string[] {
  const d = delimiter(content);
  const body = content.endsWith('\n') ? content.slice(0, -1) : content;
  const lines = [`tmp=$(mktemp ${word(`${path}.pgplay-XXXXXX`)})`];
  // A here-document always ends its last line; content without a final newline gets it removed.
  if (content === '') lines.push(': > "$tmp"');
  else lines.push(`cat > "$tmp" <<'${d}'`, ...body.split('\n'), d);
  if (content !== '' && !content.endsWith('\n')) lines.push(`truncate -s -1 "$tmp"`);
  lines.push(`chmod ${(o.mode ?? 0o644).toString(8).padStart(4, '0')} "$tmp"`);
  if (o.owner !== undefined || o.group !== undefined) lines.push(`chown ${word(`${o.owner ?? ''}${o.group !== undefined ? `:${o.group}` : ''}`)} "$tmp"`);
  lines.push(`mv -f "$tmp" ${word(path)}`);
  return lines;
}

/** A value as a SQL literal (standard_conforming_strings, the default since 9.1). */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return `'${text.replace(/'/g, "''")}'`;
}

/** The statement with $1, $2 ... replaced by its parameters as literals (psql has no bound parameters on -c). */
export function inlineParams(sql: string, params: unknown[] = []): string {
  return sql.replace(/\$(\d+)/g, (m, n: string) => (Number(n) >= 1 && Number(n) <= params.length ? sqlLiteral(params[Number(n) - 1]) : m));
}

/** psql on the host's server through its socket, as the PostgreSQL OS user, stopping at the first error. */
export function psqlLine(host: Host, sql: string, o: { database?: string; port?: number } = {}): string {
  const argv = ['psql', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', host.postgres.socketDir, '-p', String(o.port ?? host.postgres.port), '-U', host.postgres.superuser, '-d', o.database ?? 'postgres', '-c', sql];
  return commandLine(argv, host.postgres.osUser);
}

/** Env names of a secret reference: the variable, or a file the script reads. */
export function secretShell(ref: { env: string } | { file: string }): { expr: string; env: string[] } {
  return 'env' in ref ? { expr: `\${${ref.env}}`, env: [ref.env] } : { expr: `$(cat ${word(ref.file)})`, env: [] };
}

/**
 * The lines that empty PGDATA before a restore writes it: refused (exit 3) while a server runs there,
 * then pg_control first, so a removal that stops half-way leaves nothing that can be started.
 */
export function emptyPgdataLines(host: Host, pgdata: string, what: string): string[] {
  const owner = host.postgres.osUser;
  return [
    `if ${statusShell(host, pgdata)} >/dev/null 2>&1; then echo ${word(`a server runs in ${pgdata}: stop it first; nothing was ${what}`)} >&2; exit 3; fi`,
    commandLine(['rm', '-f', '--', `${pgdata}/global/pg_control`], owner),
    commandLine(['find', pgdata, '-mindepth', '1', '-maxdepth', '1', '-exec', 'rm', '-rf', '--', '{}', '+'], owner),
  ];
}
