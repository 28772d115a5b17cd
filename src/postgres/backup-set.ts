/**
 * Which backup set can reach a recovery target, and whether the WAL archive holds what the recovery
 * from it needs: decided from `pgbackrest info` and a listing of the archive before anything is
 * restored (pitr-drill.yml now; restore.yml will ask the same questions).
 *
 * - The set: the one the user named (`set`), else for latest and immediate the newest, else the newest
 *   backup whose consistency point (its stop time, or its stop LSN for LSN positions) lies before the
 *   target's position. A name or xid target has a position only when pgplay could find it (the
 *   restore point's LSN in the server log, the transaction's commit timestamp); otherwise the newest
 *   set is used with a warning, since pgBackRest itself would pick it and recovery from it can never
 *   reach a target older than it.
 * - A target before the chosen set's consistency point can never be reached from it: refused.
 * - The WAL: every segment from the set's first (its WAL start) to the one that holds the target (to
 *   the newest for latest, or when the target's place in the WAL is not known) must be in the archive,
 *   on the backup's timeline or a later one recovery may follow. A missing segment is named.
 */
import type { BackupEntry } from './pgbackrest-info.js';
import { formatLsn, parseLsn, parseSegmentName, segmentName, segmentOfLsn, type Segment } from './recovery-target.js';

/** Where the target lies, when pgplay knows it, and how it found out (for the report). */
export interface TargetPosition {
  /** Epoch milliseconds. */
  time?: number;
  lsn?: bigint;
  /** "restore point \"x\" created at 0/5000090 (server log of db1)", ... */
  source: string;
}

export interface SetRequest {
  type: string;
  value: string;
  /** A set label the user named. */
  set?: string;
  position?: TargetPosition;
}

export interface SetChoice {
  backup: BackupEntry;
  reason: string;
  warning?: string;
}

/** A target that no backup (or not the named one) can reach: pgplay refuses it (exit 3). */
export class TargetRefusal extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

function describeStop(b: BackupEntry): string {
  return `${b.label} (${b.type}) reached consistency at ${isoSeconds(b.stop)}${b.lsn_stop ? `, LSN ${b.lsn_stop}` : ''}`;
}

/** Whether the backup's consistency point lies at or before the position; undefined when unknown. */
function endsBefore(b: BackupEntry, p: TargetPosition): boolean | undefined {
  if (p.lsn !== undefined) {
    const stop = b.lsn_stop ? parseLsn(b.lsn_stop) : undefined;
    if (stop !== undefined) return stop <= p.lsn;
  }
  if (p.time !== undefined) return b.stop * 1000 <= p.time;
  return undefined;
}

export function describeTarget(req: Pick<SetRequest, 'type' | 'value'>): string {
  return req.type === 'latest' || req.type === 'immediate' ? `target ${req.type}` : `target ${req.type} ${JSON.stringify(req.value)}`;
}

/** The backup set for a target, or a TargetRefusal. `backups` oldest first, as info lists them. */
export function chooseBackupSet(backups: BackupEntry[], req: SetRequest): SetChoice {
  const target = describeTarget(req);
  if (backups.length === 0) throw new TargetRefusal(`no backup to recover ${target} from: the stanza has none`, 'take a backup first (nightly-backup.yml)');
  const newest = backups[backups.length - 1]!;
  const where = req.position ? ` (${req.position.source})` : '';

  if (req.set) {
    const named = backups.find((b) => b.label === req.set);
    if (!named) {
      throw new TargetRefusal(`backup set ${req.set} does not exist`, `-p set= one of ${backups.map((b) => b.label).join(', ')}, or no set to let pgplay choose`);
    }
    if (req.position && endsBefore(named, req.position) === false) {
      throw new TargetRefusal(
        `${target}${where} is earlier than the consistency point of the backup set ${describeStop(named)}: recovery from it can never stop there`,
        olderSetHint(backups, req.position),
      );
    }
    return { backup: named, reason: `set ${named.label} was named with -p set${req.position ? `; ${named.label} reached consistency before the target${where}` : ''}` };
  }

  if (req.type === 'latest') return { backup: newest, reason: `the newest backup, ${newest.label}: target latest replays every archived WAL after it` };
  if (req.type === 'immediate') return { backup: newest, reason: `the newest backup, ${newest.label}: target immediate stops at its consistency point` };

  if (!req.position) {
    return {
      backup: newest,
      reason: `the newest backup, ${newest.label}: the ${req.type === 'name' ? 'restore point' : 'transaction'} could not be placed in time`,
      warning:
        `pgplay could not find where ${target} lies (${req.type === 'name' ? 'no "restore point ... created at" line in the primary\'s server log' : 'no commit timestamp: track_commit_timestamp is off, or the primary cannot be asked'}), ` +
        `so it restores the newest backup ${newest.label}; a target older than that backup is never reached (recovery then ends with an error). ` +
        `Name the set with -p set=LABEL (one of ${backups.map((b) => b.label).join(', ')}) to recover to an older target`,
    };
  }
  const before = backups.filter((b) => endsBefore(b, req.position!) === true);
  const chosen = before[before.length - 1];
  if (!chosen) {
    const oldest = backups[0]!;
    throw new TargetRefusal(
      `${target}${where} is earlier than the consistency point of every backup (the oldest, ${describeStop(oldest)}): no backup can recover to it`,
      'a target must lie after the end of the backup it is recovered from; the repository keeps no older backup (retention)',
    );
  }
  const cmp = req.position.lsn !== undefined && chosen.lsn_stop ? `its stop LSN ${chosen.lsn_stop} is before ${formatLsn(req.position.lsn)}` : `it ended at ${isoSeconds(chosen.stop)}`;
  return {
    backup: chosen,
    reason: `the newest backup that reached consistency before the target${where}: ${chosen.label} (${chosen.type}; ${cmp})${chosen === newest ? '' : `; newer sets (${backups.slice(backups.indexOf(chosen) + 1).map((b) => b.label).join(', ')}) end after the target`}`,
  };
}

function olderSetHint(backups: BackupEntry[], p: TargetPosition): string {
  const ok = backups.filter((b) => endsBefore(b, p) === true).map((b) => b.label);
  return ok.length ? `an older set reaches it: -p set=${ok[ok.length - 1]} (or no set to let pgplay choose)` : 'no backup in the repository ends before the target';
}

// ---------------------------------------------------------------------------------------------------
// WAL continuity
// ---------------------------------------------------------------------------------------------------

/** One WAL segment file in the archive: its 24-hex name and when it was archived (epoch seconds). */
export interface ArchivedSegment {
  name: string;
  time: number;
}

/** `pgbackrest repo-ls --recurse --output=json` of an archive id: its WAL segments (not partial ones, not history files). */
export function archivedSegments(json: string): ArchivedSegment[] {
  const listing = JSON.parse(json) as Record<string, { type?: string; time?: number }>;
  const out: ArchivedSegment[] = [];
  for (const [path, entry] of Object.entries(listing)) {
    if (entry.type !== 'file') continue;
    const m = /(?:^|\/)([0-9A-F]{24})-[0-9a-f]{40}(?:\.[a-z0-9]+)?$/.exec(path);
    if (m) out.push({ name: m[1]!, time: typeof entry.time === 'number' ? entry.time : 0 });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Where recovery may go: the newest timeline it follows (target_timeline, '' for PostgreSQL's default),
 * or 'current': only the backup's own timeline (11's default, where recovery never leaves it).
 */
export function timelineLimit(targetTimeline: string, major: number): number | 'current' {
  const t = targetTimeline.trim();
  if (t === 'current' || (t === '' && major < 12)) return 'current';
  if (t === '' || t === 'latest') return Infinity;
  return t.startsWith('0x') ? parseInt(t.slice(2), 16) : Number(t);
}

export interface WalRequest {
  backup: BackupEntry;
  type: string;
  position?: TargetPosition;
  /** Timelines recovery may follow: from the backup's up to this one (Infinity: the newest, "latest"; 'current': the backup's only). */
  maxTimeline: number | 'current';
  segmentSize: number;
}

export interface WalCheck {
  /** First and last segment recovery needs (names on the timeline each was found on, or the backup's). */
  from: string;
  to: string;
  /** Why the range ends where it does. */
  until: string;
  checked: number;
  /** Segments absent although a later one (or the backup's own last one) is archived: a gap no recovery crosses. */
  missing: string[];
  /** Segments after the newest archived one: the primary's recent WAL, not archived yet (not a gap). */
  pending: string[];
  /** The newest segment the archive holds along the timelines recovery may follow. */
  newest: string | null;
}

/** Checks that the archive holds every segment recovery from the backup to the target needs. */
export function checkWal(segments: ArchivedSegment[], req: WalRequest): WalCheck {
  const { backup, segmentSize } = req;
  const start = backup.wal_start ? parseSegmentName(backup.wal_start, segmentSize) : undefined;
  const stop = backup.wal_stop ? parseSegmentName(backup.wal_stop, segmentSize) : undefined;
  if (!start || !stop) throw new TargetRefusal(`backup ${backup.label} has no WAL range in pgbackrest info`, 'the backup is incomplete: take a new one');
  const maxTimeline = req.maxTimeline === 'current' ? start.timeline : req.maxTimeline;
  // Position -> the segment found there (the highest timeline recovery may follow wins, as it would).
  const byNumber = new Map<bigint, ArchivedSegment & Segment>();
  for (const s of segments) {
    const seg = parseSegmentName(s.name, segmentSize);
    if (!seg || seg.timeline < start.timeline || seg.timeline > maxTimeline) continue;
    const have = byNumber.get(seg.number);
    if (!have || have.timeline < seg.timeline) byNumber.set(seg.number, { ...s, ...seg });
  }
  const numbers = [...byNumber.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const newestNumber = numbers[numbers.length - 1];
  const newest = newestNumber !== undefined ? byNumber.get(newestNumber)!.name : null;

  let end: bigint;
  let until: string;
  if (req.type === 'immediate') {
    end = stop.number;
    until = "the backup's consistency point";
  } else if (req.position?.lsn !== undefined) {
    end = segmentOfLsn(req.position.lsn, segmentSize);
    until = `the segment holding ${formatLsn(req.position.lsn)}`;
  } else if (req.position?.time !== undefined && req.type !== 'latest') {
    // A segment archived after the target time holds WAL written after it: recovery stops in it at the latest.
    const after = numbers.find((n) => n >= start.number && byNumber.get(n)!.time * 1000 > req.position!.time!);
    end = after ?? newestNumber ?? stop.number;
    until = after !== undefined ? 'the first segment archived after the target time' : 'the newest archived segment (none was archived after the target time yet)';
  } else {
    end = newestNumber ?? stop.number;
    until = req.type === 'latest' ? 'the newest archived segment' : 'the newest archived segment (the target\'s place in the WAL is not known)';
  }
  if (end < stop.number) end = stop.number;

  const missing: string[] = [];
  const pending: string[] = [];
  // Beyond the newest archived segment (and the backup's own WAL) lies WAL the primary has not archived yet.
  const archivedUpTo = newestNumber !== undefined && newestNumber > stop.number ? newestNumber : stop.number;
  let timeline = start.timeline;
  for (let n = start.number; n <= end; n++) {
    const found = byNumber.get(n);
    if (found) timeline = found.timeline;
    else (n <= archivedUpTo ? missing : pending).push(segmentName({ timeline, number: n }, segmentSize));
  }
  const nameAt = (n: bigint) => byNumber.get(n)?.name ?? segmentName({ timeline: start.timeline, number: n }, segmentSize);
  return { from: nameAt(start.number), to: nameAt(end), until, checked: Number(end - start.number + 1n), missing, pending, newest };
}
