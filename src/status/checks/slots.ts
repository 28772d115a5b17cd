/**
 * Replication slots on the primary: an inactive slot keeps every WAL segment since its consumer left
 * (up to max_slot_wal_keep_size, then the consumer is lost), and a slot holding more than
 * replication.maxSlotRetainedWal is a standby or consumer far behind. Either is critical.
 */
import { bytes, formatBytes } from '../format.js';
import type { Finding, StatusCheck } from '../types.js';

const SQL = `SELECT slot_name, slot_type, active,
  COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8 AS retained_bytes
  FROM pg_replication_slots ORDER BY slot_name`;

export const slotsCheck: StatusCheck = {
  id: 'slots',
  title: 'Replication slots on the primary (replication.maxSlotRetainedWal)',
  async run(ctx) {
    const primary = Object.values(ctx.hosts).find((h) => h.role === 'primary');
    if (!primary || !ctx.facts(primary.name).running) return [{ severity: 'critical', host: primary?.name, message: 'the primary is not running: slots unknown' }];
    const max = bytes(ctx.inventory.replication?.maxSlotRetainedWal ?? '1GB', 'replication.maxSlotRetainedWal');
    const rows = await ctx.query(primary.name, SQL);
    if (rows.length === 0) return [{ severity: 'ok', host: primary.name, message: 'no replication slots' }];
    return rows.map((r): Finding => {
      const retained = Number(r.retained_bytes);
      const problems: string[] = [];
      if (r.active !== true) problems.push('inactive');
      if (retained > max) problems.push(`holds ${formatBytes(retained)} of WAL, more than ${formatBytes(max)}`);
      return {
        severity: problems.length ? 'critical' : 'ok',
        host: primary.name,
        message: `slot ${r.slot_name} (${r.slot_type}): ${problems.length ? problems.join(', ') : `active, holds ${formatBytes(retained)}`}`,
        values: { slot: String(r.slot_name), active: r.active === true, retained_bytes: retained },
      };
    });
  },
};
