/**
 * Barman 3.4's machine output (`barman -f json <command>`), read into what procedures use. Barman's JSON
 * writer keys every result by server name and collects its messages under _INFO, _WARNING, _ERROR and
 * _EXCEPTION; a check result is {status: OK|FAILED, hint} under the check's name in lowercase with
 * spaces and dashes made underscores ("WAL archive" -> wal_archive).
 */

export interface BarmanMessages {
  info: string[];
  warnings: string[];
  errors: string[];
}

export interface BarmanBackup {
  id: string;
  /** DONE, FAILED, STARTED, WAITING_FOR_WALS, ... */
  status: string;
  /** Seconds since the epoch, for a finished backup. */
  end: number | null;
  sizeBytes: number | null;
  /** VALID, OBSOLETE, KEEP:FULL, KEEP:STANDALONE, ... (barman's retention_status). */
  retention: string | null;
}

export interface BarmanBackupDetail {
  id: string;
  status: string;
  beginWal: string | null;
  endWal: string | null;
  beginLsn: string | null;
  endLsn: string | null;
  timeline: number | null;
  /** Seconds since the epoch. */
  beginTime: number | null;
  endTime: number | null;
  sizeBytes: number | null;
  pgdata: string | null;
  version: number | null;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  hint: string;
}

export class BarmanOutputError extends Error {}

/** The JSON object barman printed (one document on stdout). */
export function parseJsonOutput(stdout: string): Record<string, unknown> {
  const text = stdout.trim();
  if (text === '') return {};
  // Barman prints one JSON document; a line before it (a warning of Python) is tolerated.
  const start = text.indexOf('{');
  if (start < 0) throw new BarmanOutputError(`barman printed no JSON: ${text.slice(0, 200)}`);
  try {
    const value = JSON.parse(text.slice(start)) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BarmanOutputError('barman printed JSON that is not an object');
    return value as Record<string, unknown>;
  } catch (e) {
    if (e instanceof BarmanOutputError) throw e;
    throw new BarmanOutputError(`barman printed unreadable JSON: ${(e as Error).message}`);
  }
}

export function messagesOf(json: Record<string, unknown>): BarmanMessages {
  const list = (k: string) => (Array.isArray(json[k]) ? (json[k] as unknown[]).map(String) : []);
  return { info: list('_INFO'), warnings: list('_WARNING'), errors: [...list('_ERROR'), ...list('_EXCEPTION')] };
}

function num(v: unknown): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

function str(v: unknown): string | null {
  return v === undefined || v === null || v === '' ? null : String(v);
}

/** `barman -f json list-backups SERVER`: the server's backups, newest first as barman lists them. */
export function parseListBackups(json: Record<string, unknown>, server: string): BarmanBackup[] {
  const rows = json[server];
  if (rows === undefined) return [];
  if (!Array.isArray(rows)) throw new BarmanOutputError(`list-backups: the entry of server ${server} is not a list`);
  return rows.map((r: Record<string, unknown>) => ({
    id: String(r.backup_id),
    status: String(r.status ?? 'UNKNOWN'),
    end: num(r.end_time_timestamp),
    sizeBytes: num(r.size_bytes),
    retention: str(r.retention_status),
  }));
}

/** `barman -f json show-backup SERVER ID`: what a recovery needs to know of the backup. */
export function parseShowBackup(json: Record<string, unknown>, server: string): BarmanBackupDetail {
  const entry = json[server];
  if (typeof entry !== 'object' || entry === null) throw new BarmanOutputError(`show-backup: no entry for server ${server}`);
  const e = entry as Record<string, unknown>;
  const base = (e.base_backup_information ?? {}) as Record<string, unknown>;
  return {
    id: String(e.backup_id),
    status: String(e.status ?? 'UNKNOWN'),
    beginWal: str(base.begin_wal),
    endWal: str(base.end_wal),
    beginLsn: str(base.begin_lsn),
    endLsn: str(base.end_lsn),
    timeline: num(base.timeline),
    beginTime: num(base.begin_time_timestamp),
    endTime: num(base.end_time_timestamp),
    sizeBytes: num(base.disk_usage_bytes),
    pgdata: str(e.pgdata_directory),
    version: num(e.postgresql_version),
  };
}

/** `barman -f json check SERVER`: every check with its status and hint. */
export function parseCheck(json: Record<string, unknown>, server: string): CheckResult[] {
  const entry = json[server];
  if (typeof entry !== 'object' || entry === null) return [];
  return Object.entries(entry as Record<string, { status?: string; hint?: string }>).map(([name, r]) => ({
    name,
    ok: r?.status === 'OK',
    hint: String(r?.hint ?? ''),
  }));
}

/**
 * `barman check --nagios SERVER`: the first line is "BARMAN OK - ..." or
 * "BARMAN CRITICAL - server main has issues * main FAILED: WAL archive, receive-wal running".
 */
export function parseNagios(stdout: string, server: string): { ok: boolean; failed: string[]; summary: string } {
  const first = stdout.split('\n').find((l) => l.startsWith('BARMAN ')) ?? stdout.trim().split('\n')[0] ?? '';
  const ok = /^BARMAN OK\b/.test(first);
  const failed: string[] = [];
  for (const part of first.split(' * ')) {
    const m = /^(\S+) FAILED: (.*?)(\|.*)?$/.exec(part.trim());
    if (m && m[1] === server) failed.push(...m[2]!.split(', ').map((s) => s.trim()).filter(Boolean));
  }
  return { ok, failed, summary: first.trim() };
}

/** `barman -f json show-servers SERVER`: one of the server's directories (backup_directory, wals_directory, ...). */
export function serverDirectory(json: Record<string, unknown>, server: string, key: 'backup_directory' | 'wals_directory' | 'basebackups_directory'): string | null {
  const entry = json[server];
  if (typeof entry !== 'object' || entry === null) return null;
  return str((entry as Record<string, unknown>)[key]);
}

/** `barman -f json show-servers SERVER`: where the server keeps its archived WAL. */
export function walsDirectory(json: Record<string, unknown>, server: string): string | null {
  return serverDirectory(json, server, 'wals_directory');
}

/** `barman -f json show-servers SERVER`: where the server keeps its base backups (<dir>/<backup id>/backup.info). */
export function basebackupsDirectory(json: Record<string, unknown>, server: string): string | null {
  return serverDirectory(json, server, 'basebackups_directory');
}

/** `find <wals_directory> -type f -printf '%f %T@\\n'`: the archived segments (compressed or not), oldest first; history and .backup files are not segments. */
export function parseWalListing(stdout: string): Array<{ name: string; time: number }> {
  const out: Array<{ name: string; time: number }> = [];
  for (const line of stdout.split('\n')) {
    const m = /^([0-9A-F]{24})(?:\.[a-z0-9]+)? ([0-9.]+)$/.exec(line.trim());
    if (m) out.push({ name: m[1]!, time: Math.floor(Number(m[2])) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
