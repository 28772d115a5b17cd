/**
 * Replication lag of every standby: bytes of WAL the primary has written that the standby has not
 * replayed, and the time since the last replayed transaction while WAL waits to be replayed (0 when
 * it has replayed all it received). Paused replay, a standby that does not stream, or a lag beyond
 * replication.maxLag is critical: that standby is not the recovery point it seems to be.
 */
import { parseLsn } from '../../expr/functions.js';
import { bytes, formatAge, formatBytes, seconds } from '../format.js';
import type { Finding, StatusCheck } from '../types.js';

const STANDBY_SQL = `SELECT pg_is_wal_replay_paused() AS paused, pg_last_wal_replay_lsn()::text AS replay_lsn,
  (SELECT status FROM pg_stat_wal_receiver) AS receiver,
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END::float8 AS lag_seconds`;

export const replicationCheck: StatusCheck = {
  id: 'replication',
  title: 'Replication lag per standby (replication.maxLag)',
  async run(ctx) {
    const standbys = Object.values(ctx.hosts).filter((h) => h.role === 'standby');
    if (standbys.length === 0) return [{ severity: 'ok', message: 'no standby in the inventory' }];
    const primary = Object.values(ctx.hosts).find((h) => h.role === 'primary');
    const maxLag = ctx.inventory.replication?.maxLag ?? {};
    const maxBytes = bytes(maxLag.bytes ?? '64MB', 'replication.maxLag.bytes');
    const maxSeconds = seconds(maxLag.time ?? '5m', 'replication.maxLag.time');
    const findings: Finding[] = [];
    for (const s of standbys) {
      const f = ctx.facts(s.name);
      if (!f.reachable || !f.running || !f.in_recovery) {
        findings.push({ severity: 'critical', host: s.name, message: !f.reachable ? 'unreachable: lag unknown' : 'not a running standby: it replicates nothing', values: { lag_bytes: null, lag_seconds: null } });
        continue;
      }
      const row = (await ctx.query(s.name, STANDBY_SQL))[0]!;
      // The primary's position is read after the standby's: the lag is never understated.
      const current = primary && ctx.facts(primary.name).running ? String((await ctx.query(primary.name, 'SELECT pg_current_wal_lsn()::text AS lsn'))[0]!.lsn) : undefined;
      const replay = parseLsn(String(row.replay_lsn ?? ''));
      const head = current ? parseLsn(current) : undefined;
      const lagBytes = replay !== undefined && head !== undefined ? Math.max(0, head - replay) : null;
      const lagSeconds = Number(row.lag_seconds ?? 0);
      const problems: string[] = [];
      if (row.paused === true) problems.push('replay is paused (pg_wal_replay_resume() resumes it)');
      if (row.receiver !== 'streaming') problems.push(`not streaming (WAL receiver ${row.receiver ?? 'not running'})`);
      if (lagBytes === null) problems.push('the primary is not readable: lag unknown');
      else if (lagBytes > maxBytes) problems.push(`${formatBytes(lagBytes)} behind, more than ${formatBytes(maxBytes)}`);
      if (lagSeconds > maxSeconds) problems.push(`${formatAge(lagSeconds)} behind, more than ${formatAge(maxSeconds)}`);
      findings.push({
        severity: problems.length ? 'critical' : 'ok',
        host: s.name,
        message: problems.length ? problems.join('; ') : `streaming, ${formatBytes(lagBytes ?? 0)} and ${formatAge(lagSeconds)} behind`,
        values: { lag_bytes: lagBytes, lag_seconds: Math.round(lagSeconds * 1000) / 1000, paused: row.paused === true, streaming: row.receiver === 'streaming' },
      });
    }
    return findings;
  },
};
