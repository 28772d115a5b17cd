/**
 * WAL archiving on the primary, from pg_stat_archiver: a failure since the last success is critical
 * (the archive, and with it every point-in-time recovery, stops at the last archived segment); so is
 * archive_mode off. More than MAX_WAITING segments between the last archived one and the one being
 * written is a warning: the archiver is falling behind.
 */
import { asDate, epochSeconds, formatAge } from '../format.js';
import type { Finding, StatusCheck } from '../types.js';

export const MAX_WAITING_SEGMENTS = 3;

const SQL = `SELECT current_setting('archive_mode') AS archive_mode, a.archived_count, a.last_archived_wal, a.last_archived_time,
  a.failed_count, a.last_failed_wal, a.last_failed_time, pg_walfile_name(pg_current_wal_lsn()) AS current_wal,
  pg_size_bytes(current_setting('wal_segment_size')) AS segment_bytes
  FROM pg_stat_archiver a`;

export const archivingCheck: StatusCheck = {
  id: 'archiving',
  title: 'WAL archiving on the primary (pg_stat_archiver)',
  async run(ctx) {
    const primary = Object.values(ctx.hosts).find((h) => h.role === 'primary');
    if (!primary) return [{ severity: 'critical', message: 'the inventory has no primary' }];
    const f = ctx.facts(primary.name);
    if (!f.running || f.in_recovery) return [{ severity: 'critical', host: primary.name, message: 'the primary is not a running read-write server: nothing archives' }];
    const row = (await ctx.query(primary.name, SQL))[0]!;
    return [assessArchiver(row, ctx.now, primary.name)];
  },
};

/** The finding for one pg_stat_archiver row (pure, so the rules are unit-tested). */
export function assessArchiver(row: Record<string, unknown>, now: Date, host: string): Finding {
  const lastArchived = asDate(row.last_archived_time);
  const lastFailed = asDate(row.last_failed_time);
  const failing = lastFailed !== null && (lastArchived === null || lastFailed > lastArchived);
  const waiting = segmentsWaiting(String(row.current_wal ?? ''), row.last_archived_wal == null ? null : String(row.last_archived_wal), Number(row.segment_bytes ?? 16 * 1024 ** 2));
  const values = {
    archive_mode: String(row.archive_mode),
    failing,
    failed_count: Number(row.failed_count ?? 0),
    archived_count: Number(row.archived_count ?? 0),
    last_archived_wal: (row.last_archived_wal as string | null) ?? null,
    last_archived_age_seconds: lastArchived ? Math.round(epochSeconds(now) - epochSeconds(lastArchived)) : null,
    last_failed_wal: (row.last_failed_wal as string | null) ?? null,
    current_wal: String(row.current_wal ?? ''),
    segments_waiting: waiting,
  };
  if (row.archive_mode === 'off') return { severity: 'critical', host, message: 'archive_mode is off: no WAL reaches the repository', values };
  if (failing) {
    return {
      severity: 'critical',
      host,
      message: `archive_command failing: ${values.failed_count} failure(s), the last on ${values.last_failed_wal} ${formatAge(epochSeconds(now) - epochSeconds(lastFailed!))} ago; last success ${lastArchived ? `${values.last_archived_wal} ${formatAge(values.last_archived_age_seconds!)} ago` : 'never'}`,
      values,
    };
  }
  if (!lastArchived) return { severity: 'warning', host, message: `nothing archived yet (current segment ${values.current_wal})`, values };
  const behind = waiting !== null && waiting > MAX_WAITING_SEGMENTS;
  return {
    severity: behind ? 'warning' : 'ok',
    host,
    message: `last archived ${values.last_archived_wal} ${formatAge(values.last_archived_age_seconds!)} ago, writing ${values.current_wal}${waiting !== null ? `: ${waiting} segment(s) waiting` : ''}${behind ? `, more than ${MAX_WAITING_SEGMENTS}` : ''}`,
    values,
  };
}

/**
 * Complete segments between the last archived one and the one being written (0 when the archiver
 * is up to date), or null when they cannot be compared (a .history file, another timeline).
 */
export function segmentsWaiting(current: string, lastArchived: string | null, segmentBytes: number): number | null {
  const segNo = (name: string) => {
    const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})/.exec(name);
    return m ? { tli: m[1]!, n: parseInt(m[2]!, 16) * Math.floor(2 ** 32 / segmentBytes) + parseInt(m[3]!, 16) } : undefined;
  };
  const c = segNo(current);
  const a = lastArchived ? segNo(lastArchived) : undefined;
  if (!c || !a || a.tli !== c.tli) return null;
  return Math.max(0, c.n - a.n - 1);
}
