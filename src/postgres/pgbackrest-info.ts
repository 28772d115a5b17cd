/**
 * Parsers for what pgBackRest 2.45 prints: `info --output=json`, `verify --output=text --verbose`, and
 * the log lines it writes to stderr (`--log-level-stderr=...`), from which pgplay reads error codes,
 * new backup labels, expired sets and verify's WAL ranges. Pure functions over text, so they are
 * tested against captured real output.
 */

// ---------------------------------------------------------------------------------------------------
// Log lines on stderr
// ---------------------------------------------------------------------------------------------------

export type LogLevel = 'ERROR' | 'WARN' | 'INFO' | 'DETAIL' | 'DEBUG' | 'TRACE';

export interface LogLine {
  level: LogLevel;
  /** The message with continuation lines joined by "\n" (their indentation removed). */
  text: string;
  /** Printed by a --dry-run command ("[DRY-RUN]" prefix, removed from text). */
  dryRun: boolean;
}

// "INFO: msg", or with timestamps and process id as on the console: "2024-01-01 10:00:00.000 P00   INFO: msg".
const LOG_LINE = /^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} )?(?:P\d\d\s+)?(ERROR|WARN|INFO|DETAIL|DEBUG|TRACE): (.*)$/;

/** Splits pgBackRest's stderr into log entries; lines that belong to no entry are dropped. */
export function parseLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const m = LOG_LINE.exec(line);
    if (m) {
      let body = m[2]!;
      const dryRun = body.startsWith('[DRY-RUN] ');
      if (dryRun) body = body.slice('[DRY-RUN] '.length);
      out.push({ level: m[1] as LogLevel, text: body, dryRun });
    } else if (/^\s+\S/.test(line) && out.length > 0) {
      out[out.length - 1]!.text += '\n' + line.trim();
    }
  }
  return out;
}

export interface PgbackrestErrorReport {
  /** pgBackRest's error code, also its exit code (e.g. 62 for "stop file exists"). */
  code: number;
  message: string;
  /** pgBackRest's own HINT lines. */
  hints: string[];
}

/** The first `ERROR: [NNN]: message` entry with its HINT lines. */
export function parseErrorReport(lines: LogLine[]): PgbackrestErrorReport | undefined {
  for (const l of lines) {
    if (l.level !== 'ERROR') continue;
    const m = /^\[(\d{3})\]: ([\s\S]*)$/.exec(l.text);
    if (!m) continue;
    const parts = m[2]!.split('\n');
    const message: string[] = [];
    const hints: string[] = [];
    for (const p of parts) {
      if (p.startsWith('HINT: ')) hints.push(p.slice('HINT: '.length));
      else message.push(p);
    }
    return { code: Number(m[1]), message: message.join(' ').trim(), hints };
  }
  return undefined;
}

/** Label of the backup a `backup` command made ("new backup label = 20240101-100000F_20240101-110000I"). */
export function newBackupLabel(lines: LogLine[]): string | undefined {
  for (const l of lines) {
    const m = /^new backup label = (\S+)/.exec(l.text);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * pgBackRest's notice that it changed the requested type: "no prior backup exists, incr backup has
 * been changed to full" (also diff -> full, and diff/incr when the prior full is unusable).
 */
export function backupTypeChange(lines: LogLine[]): { from: string; to: string; reason: string } | undefined {
  for (const l of lines) {
    const m = /^(.*?),?\s*(full|diff|incr) backup has been changed to (full|diff|incr)/.exec(l.text);
    if (m) return { from: m[2]!, to: m[3]!, reason: m[1]!.trim() };
  }
  return undefined;
}

/** The set a restore used: "repo1: restore backup set 20240101-100000F, recovery will start at ...". */
export function restoredSet(lines: LogLine[]): { label: string; repo?: number; recoveryStart?: string } | undefined {
  for (const l of lines) {
    const m = /^(?:repo(\d+): )?restore backup set (\S+?),?(?: recovery will start at (.+))?$/.exec(l.text);
    if (m) {
      return {
        label: m[2]!,
        ...(m[1] ? { repo: Number(m[1]) } : {}),
        ...(m[3] ? { recoveryStart: m[3].trim() } : {}),
      };
    }
  }
  return undefined;
}

export interface ExpireReport {
  /** Backup labels removed from the repository (dependent diff/incr included). */
  removedBackups: string[];
  /** WAL ranges removed from the archive. */
  removedArchive: { archiveId: string; start: string; stop: string }[];
}

/** What `expire` removed, or with --dry-run would remove. */
export function parseExpireLog(lines: LogLine[]): ExpireReport {
  const report: ExpireReport = { removedBackups: [], removedArchive: [] };
  for (const l of lines) {
    let m = /^(?:repo\d+: )?remove expired backup (\S+)$/.exec(l.text);
    if (m) {
      if (!report.removedBackups.includes(m[1]!)) report.removedBackups.push(m[1]!);
      continue;
    }
    m = /^(?:repo\d+: )?(\S+) remove archive, start = (\S+), stop = (\S+)$/.exec(l.text);
    if (m) report.removedArchive.push({ archiveId: m[1]!, start: m[2]!, stop: m[3]! });
  }
  return report;
}

// ---------------------------------------------------------------------------------------------------
// info --output=json
// ---------------------------------------------------------------------------------------------------

/** Stanza status codes of `info` (pgBackRest's INFO_STANZA_STATUS_CODE_*). */
export const STANZA_STATUS = {
  OK: 0,
  MISSING_STANZA_PATH: 1,
  NO_BACKUP: 2,
  MISSING_STANZA_DATA: 3,
  MIXED: 4,
  PG_MISMATCH: 5,
  BACKUP_MISSING: 6,
  OTHER: 99,
} as const;

export interface BackupEntry {
  label: string;
  type: 'full' | 'diff' | 'incr';
  /** The backup this one is based on (null for a full). */
  prior: string | null;
  /** Every backup whose files this one needs. */
  reference: string[];
  /** Start and stop as epoch seconds and ISO 8601 (UTC). */
  start: number;
  stop: number;
  start_time: string;
  stop_time: string;
  /** Database size and the part of it this backup copied, in bytes. */
  size: number;
  delta: number;
  /** Bytes in the repository: the whole set and this backup's own files. */
  repo_size: number;
  repo_delta: number;
  lsn_start: string | null;
  lsn_stop: string | null;
  wal_start: string | null;
  wal_stop: string | null;
  /** pgBackRest found page checksum errors while copying. */
  error: boolean;
  database_id: number | null;
  repo: number | null;
}

export interface StanzaInfo {
  name: string;
  status: { code: number; message: string; lock_held: boolean };
  cipher: string;
  /** Databases the stanza has held; system_id is a string because it exceeds 2^53. */
  db: { id: number; version: string; system_id: string; repo: number | null }[];
  archive: { id: string; min: string | null; max: string | null }[];
  /** Oldest first, as pgBackRest lists them. */
  backups: BackupEntry[];
}

/** Integers that JSON.parse would round (system identifiers are 64-bit) become strings first. */
function quoteBigIntegers(text: string): string {
  return text.replace(/("(?:[^"\\]|\\.)*")|(?<![\w.+-])(-?\d{16,})(?![\d.eE])/g, (match, str: string | undefined, num: string | undefined) => {
    if (str !== undefined) return str;
    return Number.isSafeInteger(Number(num)) ? num! : `"${num}"`;
  });
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function numOr(v: unknown, fallback: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  return fallback;
}
function strOrNull(v: unknown): string | null {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null;
}
function iso(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString();
}

export class InfoParseError extends Error {}

/** Parses `pgbackrest info --output=json` into stanzas with snake_case keys for templates and expressions. */
export function parseInfoJson(text: string): StanzaInfo[] {
  let raw: unknown;
  try {
    raw = JSON.parse(quoteBigIntegers(text));
  } catch (e) {
    throw new InfoParseError(`pgbackrest info printed no valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new InfoParseError('pgbackrest info JSON is not a list of stanzas');
  return raw.map((s) => {
    const st = obj(s);
    const status = obj(st.status);
    return {
      name: String(st.name ?? ''),
      status: {
        code: numOr(status.code, STANZA_STATUS.OTHER),
        message: String(status.message ?? ''),
        lock_held: obj(obj(status.lock).backup).held === true,
      },
      cipher: String(st.cipher ?? 'none'),
      db: arr(st.db).map((d) => {
        const o = obj(d);
        return { id: numOr(o.id, 0), version: String(o.version ?? ''), system_id: String(o['system-id'] ?? ''), repo: o['repo-key'] === undefined ? null : numOr(o['repo-key'], 0) };
      }),
      archive: arr(st.archive).map((a) => {
        const o = obj(a);
        return { id: String(o.id ?? ''), min: strOrNull(o.min), max: strOrNull(o.max) };
      }),
      backups: arr(st.backup).map(parseBackup),
    };
  });
}

function parseBackup(b: unknown): BackupEntry {
  const o = obj(b);
  const ts = obj(o.timestamp);
  const info = obj(o.info);
  const repo = obj(info.repository);
  const lsn = obj(o.lsn);
  const archive = obj(o.archive);
  const database = obj(o.database);
  const start = numOr(ts.start, 0);
  const stop = numOr(ts.stop, 0);
  const type = String(o.type ?? '');
  return {
    label: String(o.label ?? ''),
    type: type === 'full' || type === 'diff' || type === 'incr' ? type : 'full',
    prior: strOrNull(o.prior),
    reference: arr(o.reference).map(String),
    start,
    stop,
    start_time: iso(start),
    stop_time: iso(stop),
    size: numOr(info.size, 0),
    delta: numOr(info.delta, 0),
    repo_size: numOr(repo.size, 0),
    repo_delta: numOr(repo.delta, 0),
    lsn_start: strOrNull(lsn.start),
    lsn_stop: strOrNull(lsn.stop),
    wal_start: strOrNull(archive.start),
    wal_stop: strOrNull(archive.stop),
    error: o.error === true,
    database_id: database.id === undefined ? null : numOr(database.id, 0),
    repo: database['repo-key'] === undefined ? null : numOr(database['repo-key'], 0),
  };
}

/** What another engine knows of one of its full backups (a base backup of Barman or of the basebackup repository). */
export interface FullBackup {
  label: string;
  /** Start and stop as epoch seconds. */
  start: number;
  stop: number;
  /** Bytes: the database copied, and what the backup takes in the repository (default: size). */
  size: number;
  repoSize?: number;
  lsnStart?: string | null;
  lsnStop?: string | null;
  walStart?: string | null;
  walStop?: string | null;
}

/**
 * A full backup of another engine as pgBackRest lists one: no prior, no references, its own delta, the
 * times in the format parseInfoJson gives them, so that the set choice, status and reports read every
 * engine alike.
 */
export function fullBackupEntry(b: FullBackup): BackupEntry {
  const repoSize = b.repoSize ?? b.size;
  return {
    label: b.label,
    type: 'full',
    prior: null,
    reference: [],
    start: b.start,
    stop: b.stop,
    start_time: iso(b.start),
    stop_time: iso(b.stop),
    size: b.size,
    delta: b.size,
    repo_size: repoSize,
    repo_delta: repoSize,
    lsn_start: b.lsnStart ?? null,
    lsn_stop: b.lsnStop ?? null,
    wal_start: b.walStart ?? null,
    wal_stop: b.walStop ?? null,
    error: false,
    database_id: null,
    repo: null,
  };
}

/** A stanza exists in the repository (created and readable), whether or not it has backups yet. */
export function stanzaExists(s: StanzaInfo): boolean {
  return s.status.code === STANZA_STATUS.OK || s.status.code === STANZA_STATUS.NO_BACKUP || s.status.code === STANZA_STATUS.BACKUP_MISSING;
}

/** The summary a playbook registers: the stanza's own fields plus the facts procedures ask about. */
export function summarizeStanza(s: StanzaInfo): Record<string, unknown> {
  const fulls = s.backups.filter((b) => b.type === 'full');
  const current = s.db[s.db.length - 1];
  const archive = s.archive[s.archive.length - 1];
  return {
    stanza: s.name,
    status: s.status,
    exists: stanzaExists(s),
    cipher: s.cipher,
    db: s.db,
    system_id: current?.system_id ?? null,
    pg_version: current?.version ?? null,
    archive: s.archive,
    archive_min: archive?.min ?? null,
    archive_max: archive?.max ?? null,
    backups: s.backups,
    backup_count: s.backups.length,
    full_count: fulls.length,
    latest: s.backups[s.backups.length - 1] ?? null,
    latest_full: fulls[fulls.length - 1] ?? null,
  };
}

// ---------------------------------------------------------------------------------------------------
// verify --output=text --verbose
// ---------------------------------------------------------------------------------------------------

export interface VerifyCounts {
  missing: number;
  checksum_invalid: number;
  size_invalid: number;
  other: number;
}

export interface VerifyArchive extends VerifyCounts {
  archive_id: string;
  total: number;
  valid: number;
}

export interface VerifyBackup extends VerifyCounts {
  label: string;
  status: string;
  total: number;
  valid: number;
}

export interface VerifyStanza {
  name: string;
  status: string;
  archives: VerifyArchive[];
  backups: VerifyBackup[];
  /** Lines verify prints without structure, e.g. "No usable backup.info file". */
  messages: string[];
}

function counts(line: string): VerifyCounts {
  const get = (key: string) => {
    const m = new RegExp(`${key}: (\\d+)`).exec(line);
    return m ? Number(m[1]) : 0;
  };
  return { missing: get('missing'), checksum_invalid: get('checksum invalid'), size_invalid: get('size invalid'), other: get('other') };
}

const ZERO: VerifyCounts = { missing: 0, checksum_invalid: 0, size_invalid: 0, other: 0 };

/** Parses verify's text report (stdout with --output=text, with or without --verbose). */
export function parseVerifyText(text: string): VerifyStanza[] {
  const stanzas: VerifyStanza[] = [];
  let current: VerifyStanza | undefined;
  let last: VerifyCounts | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    let m = /^stanza: (.+)$/.exec(line);
    if (m) {
      current = { name: m[1]!, status: '', archives: [], backups: [], messages: [] };
      stanzas.push(current);
      last = undefined;
      continue;
    }
    if (!current) continue;
    m = /^status: (.+)$/.exec(line);
    if (m && current.status === '') {
      current.status = m[1]!;
      continue;
    }
    m = /^archiveId: ([^,]+), total WAL checked: (\d+), total valid WAL: (\d+)$/.exec(line);
    if (m) {
      const a: VerifyArchive = { archive_id: m[1]!, total: Number(m[2]), valid: Number(m[3]), ...ZERO };
      current.archives.push(a);
      last = a;
      continue;
    }
    m = /^backup: ([^,]+), status: ([^,]+), total files checked: (\d+), total valid files: (\d+)$/.exec(line);
    if (m) {
      const b: VerifyBackup = { label: m[1]!, status: m[2]!, total: Number(m[3]), valid: Number(m[4]), ...ZERO };
      current.backups.push(b);
      last = b;
      continue;
    }
    if (/^missing: \d+/.test(line) && last) {
      Object.assign(last, counts(line));
      continue;
    }
    current.messages.push(line);
    last = undefined;
  }
  return stanzas;
}

export interface WalRange {
  archive_id: string;
  start: string;
  stop: string;
}

/** The contiguous WAL ranges verify found (DETAIL lines); two ranges on one timeline mean a gap. */
export function verifyWalRanges(lines: LogLine[]): WalRange[] {
  const out: WalRange[] = [];
  for (const l of lines) {
    const m = /^archiveId: (\S+), wal start: ([0-9A-F]{24}), wal stop: ([0-9A-F]{24})$/.exec(l.text);
    if (m) out.push({ archive_id: m[1]!, start: m[2]!, stop: m[3]! });
  }
  return out;
}

/** WAL missing inside one timeline: between the end of one range and the start of the next. */
export function walGaps(ranges: WalRange[]): { archive_id: string; timeline: string; after: string; before: string }[] {
  const gaps: { archive_id: string; timeline: string; after: string; before: string }[] = [];
  const sorted = [...ranges].sort((a, b) => (a.archive_id === b.archive_id ? a.start.localeCompare(b.start) : a.archive_id.localeCompare(b.archive_id)));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const next = sorted[i]!;
    if (prev.archive_id !== next.archive_id) continue;
    if (prev.stop.slice(0, 8) !== next.start.slice(0, 8)) continue;
    gaps.push({ archive_id: next.archive_id, timeline: next.start.slice(0, 8), after: prev.stop, before: next.start });
  }
  return gaps;
}

export type WalGap = ReturnType<typeof walGaps>[number];

/** Where the oldest backup's WAL starts: no restore from the repository needs WAL before it. */
export interface BackupHorizon {
  label: string;
  archive_id: string;
  wal_start: string;
}

/** The oldest backup's WAL start in `info`'s terms (its archive id is the database's version-id), if any. */
export function backupHorizon(s: StanzaInfo): BackupHorizon | undefined {
  const oldest = s.backups.find((b) => b.wal_start !== null);
  if (!oldest) return undefined;
  const db = s.db.find((d) => d.id === oldest.database_id) ?? s.db[s.db.length - 1];
  if (!db) return undefined;
  return { label: oldest.label, archive_id: `${db.version}-${db.id}`, wal_start: oldest.wal_start! };
}

/**
 * Every segment missing in the gap comes before the oldest backup's WAL start: an older database's
 * archive, or an earlier position (log and segment number, across timelines) on the same one.
 */
export function gapIsOlder(gap: WalGap, horizon: BackupHorizon | undefined): boolean {
  if (!horizon) return false;
  const dbId = (archiveId: string) => Number(/-(\d+)$/.exec(archiveId)?.[1] ?? NaN);
  if (gap.archive_id !== horizon.archive_id) return dbId(gap.archive_id) < dbId(horizon.archive_id);
  return gap.before.slice(8) <= horizon.wal_start.slice(8);
}

function describeGap(g: WalGap): string {
  return `WAL archive ${g.archive_id}: segments missing between ${g.after} and ${g.before} (timeline ${g.timeline})`;
}

/** Gaps older than the oldest backup: no restore needs those segments, so they are notes, not problems. */
export function verifyNotes(lines: LogLine[], horizon: BackupHorizon | undefined): string[] {
  return walGaps(verifyWalRanges(lines))
    .filter((g) => gapIsOlder(g, horizon))
    .map((g) => `${describeGap(g)}, older than the oldest backup ${horizon!.label} (WAL from ${horizon!.wal_start}): no restore needs them`);
}

/**
 * Everything verify found wrong, one line each. pgBackRest 2.45 exits 0 even when the report says
 * "status: error", so this list (not the exit code) decides whether verify passed. A WAL gap is a
 * problem unless it is older than the oldest backup (`horizon`; see verifyNotes).
 */
export function verifyProblems(stanzas: VerifyStanza[], lines: LogLine[] = [], horizon?: BackupHorizon): string[] {
  const problems: string[] = [];
  const describe = (c: VerifyCounts) =>
    (['missing', 'checksum_invalid', 'size_invalid', 'other'] as const)
      .filter((k) => c[k] > 0)
      .map((k) => `${c[k]} ${k.replace('_', ' ')}`)
      .join(', ');
  for (const s of stanzas) {
    for (const a of s.archives) {
      const d = describe(a);
      if (d || a.valid < a.total) problems.push(`stanza ${s.name}: WAL archive ${a.archive_id}: ${d || `${a.total - a.valid} of ${a.total} invalid`}`);
    }
    for (const b of s.backups) {
      const d = describe(b);
      if (b.status !== 'valid' || d) problems.push(`stanza ${s.name}: backup ${b.label} is ${b.status}${d ? ` (${d} of ${b.total} files)` : ''}`);
    }
    // With status ok the loose lines are notes ("no archives or backups exist in the repo").
    if (s.status !== 'ok') for (const m of s.messages) problems.push(`stanza ${s.name}: ${m}`);
    if (s.status !== 'ok' && problems.every((p) => !p.startsWith(`stanza ${s.name}:`))) {
      problems.push(`stanza ${s.name}: status ${s.status}`);
    }
  }
  for (const g of walGaps(verifyWalRanges(lines))) if (!gapIsOlder(g, horizon)) problems.push(describeGap(g));
  for (const l of lines) {
    if (l.level === 'ERROR' || l.level === 'WARN') problems.push(`${l.level}: ${l.text.replace(/\n/g, ' ')}`);
  }
  return problems;
}

/** The individual files verify complained about ("file missing '...'", "invalid checksum '...'"). */
export function verifyFileProblems(lines: LogLine[]): string[] {
  return lines
    .filter((l) => l.level === 'INFO' && /^(file missing|invalid checksum|invalid size|invalid result|invalid file)\b/.test(l.text))
    .map((l) => l.text);
}
