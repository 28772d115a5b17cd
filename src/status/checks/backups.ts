/**
 * The newest backup of each type against backup.maxAge (full and any always; diff and incr when set),
 * from the repository's own `pgbackrest info` on the backup host. The age counts from the backup's
 * stop time: that is when it became restorable.
 */
import type { BackupEntry } from '../../postgres/pgbackrest-info.js';
import { epochSeconds, formatAge, formatBytes, seconds } from '../format.js';
import type { Finding, StatusCheck, StatusContext } from '../types.js';

const TYPES = ['full', 'diff', 'incr', 'any'] as const;

/** Findings about backups need pgBackRest's repository; with another tool they say so once. */
export function withoutPgbackrest(ctx: StatusContext): Finding[] | undefined {
  const tool = ctx.inventory.backup?.tool;
  if (tool === 'pgbackrest') return undefined;
  return [
    {
      severity: 'critical',
      message: tool ? `backup.tool ${tool}: pgplay status reads pgBackRest repositories only` : 'the inventory has no backup section: nothing backs this cluster up',
    },
  ];
}

export const backupAgeCheck: StatusCheck = {
  id: 'backup-age',
  title: 'Age of the newest backups (backup.maxAge)',
  async run(ctx) {
    const unsupported = withoutPgbackrest(ctx);
    if (unsupported) return unsupported;
    const info = await ctx.pgbackrestInfo();
    const maxAge = ctx.inventory.backup!.maxAge ?? {};
    const now = epochSeconds(ctx.now);
    const findings: Finding[] = [];
    for (const type of TYPES) {
      const limit = maxAge[type];
      const newest = newestOf(info.backups, type);
      if (limit === undefined) {
        if (newest) findings.push(describe(type, newest, now, undefined));
        continue;
      }
      if (!newest) {
        findings.push({ severity: 'critical', message: `${label(type)}: none in stanza ${info.name} (${info.status.message})`, values: { type, age_seconds: null } });
        continue;
      }
      findings.push(describe(type, newest, now, seconds(limit, `backup.maxAge.${type}`)));
    }
    return findings;
  },
};

function label(type: (typeof TYPES)[number]): string {
  return type === 'any' ? 'newest backup' : `newest ${type} backup`;
}

export function newestOf(backups: BackupEntry[], type: (typeof TYPES)[number]): BackupEntry | undefined {
  return backups.filter((b) => type === 'any' || b.type === type).reduce<BackupEntry | undefined>((n, b) => (!n || b.stop > n.stop ? b : n), undefined);
}

function describe(type: (typeof TYPES)[number], b: BackupEntry, now: number, limit: number | undefined): Finding {
  const age = now - b.stop;
  const old = limit !== undefined && age > limit;
  return {
    severity: old ? 'critical' : 'ok',
    message: `${label(type)} ${b.label}: ${formatAge(age)} old${limit !== undefined ? `${old ? ', more than' : ', within'} ${formatAge(limit)}` : ''} (${formatBytes(b.repo_size)} in the repository)`,
    values: { type, label: b.label, age_seconds: Math.round(age), stop_time: b.stop, size_bytes: b.size, repo_size_bytes: b.repo_size, max_age_seconds: limit ?? null },
  };
}
