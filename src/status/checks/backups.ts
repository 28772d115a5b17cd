/**
 * The newest backup of each type against backup.maxAge (full and any always; diff and incr when set),
 * from the repository's own `pgbackrest info` on the backup host (with backup.tool basebackup its
 * directories, with barman Barman's own list-backups and show-backup). The age counts from the backup's
 * stop time: that is when it became restorable.
 */
import type { BackupEntry } from '../../postgres/pgbackrest-info.js';
import { epochSeconds, formatAge, formatBytes, seconds } from '../format.js';
import type { Finding, StatusCheck, StatusContext } from '../types.js';
import { barmanWhere, listBarmanBackups } from './barman.js';
import { listBasebackups } from './basebackups.js';

const TYPES = ['full', 'diff', 'incr', 'any'] as const;

/** Without a backup section nothing backs the cluster up: the backup checks say so once each. */
export function withoutBackup(ctx: StatusContext): Finding[] | undefined {
  if (ctx.inventory.backup) return undefined;
  return [{ severity: 'critical', message: 'the inventory has no backup section: nothing backs this cluster up' }];
}

interface RepositoryBackups {
  where: string;
  backups: BackupEntry[];
}

// Read once per status run: backup-age, pitr-window and repository-space all read the same listing.
const readings = new WeakMap<StatusContext, Promise<RepositoryBackups>>();

/** The repository's backups, oldest first: pgBackRest's info, the basebackup directories, or Barman's finished backups. */
export function repositoryBackups(ctx: StatusContext): Promise<RepositoryBackups> {
  let reading = readings.get(ctx);
  if (!reading) {
    reading = readRepositoryBackups(ctx);
    readings.set(ctx, reading);
  }
  return reading;
}

async function readRepositoryBackups(ctx: StatusContext): Promise<RepositoryBackups> {
  const tool = ctx.inventory.backup!.tool;
  if (tool === 'basebackup') return { where: ctx.inventory.backup!.repoPath!, backups: await listBasebackups(ctx) };
  if (tool === 'barman') {
    const { host, server } = barmanWhere(ctx);
    return { where: `Barman's server ${server} on ${host}`, backups: await listBarmanBackups(ctx) };
  }
  const info = await ctx.pgbackrestInfo();
  return { where: `stanza ${info.name} (${info.status.message})`, backups: info.backups };
}

export const backupAgeCheck: StatusCheck = {
  id: 'backup-age',
  title: 'Age of the newest backups (backup.maxAge)',
  async run(ctx) {
    const missing = withoutBackup(ctx);
    if (missing) return missing;
    const repo = await repositoryBackups(ctx);
    const maxAge = ctx.inventory.backup!.maxAge ?? {};
    const now = epochSeconds(ctx.now);
    const findings: Finding[] = [];
    for (const type of TYPES) {
      const limit = maxAge[type];
      const newest = newestOf(repo.backups, type);
      if (limit === undefined) {
        if (newest) findings.push(describe(type, newest, now, undefined));
        continue;
      }
      if (!newest) {
        findings.push({ severity: 'critical', message: `${label(type)}: none in ${repo.where}`, values: { type, age_seconds: null } });
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
