/**
 * A point-in-time recovery to any moment of backup.pitrWindow needs a full backup (and its chain of
 * WAL) that started before that moment: the oldest full backup must be at least that old. Not set,
 * nothing is required.
 */
import { epochSeconds, formatAge, seconds } from '../format.js';
import type { StatusCheck } from '../types.js';
import { repositoryBackups, withoutBackup } from './backups.js';

export const pitrWindowCheck: StatusCheck = {
  id: 'pitr-window',
  title: 'Oldest full backup covers backup.pitrWindow',
  async run(ctx) {
    const missing = withoutBackup(ctx);
    if (missing) return missing;
    const window = ctx.inventory.backup!.pitrWindow;
    // backup.tool basebackup: each base-<UTC start> directory is a full backup, its WAL in the repository's archive.
    const repo = await repositoryBackups(ctx);
    const oldest = repo.backups.filter((b) => b.type === 'full').reduce<(typeof repo.backups)[number] | undefined>((o, b) => (!o || b.start < o.start ? b : o), undefined);
    const now = epochSeconds(ctx.now);
    if (!oldest) return [{ severity: 'critical', message: `no full backup in ${repo.where}: no point in time can be recovered`, values: { oldest_full_age_seconds: null } }];
    const reach = now - oldest.start;
    if (window === undefined) {
      return [{ severity: 'ok', message: `recoverable back to ${new Date(oldest.start * 1000).toISOString()} (${formatAge(reach)}; backup.pitrWindow not set)`, values: { oldest_full_age_seconds: Math.round(reach), window_seconds: null } }];
    }
    const need = seconds(window, 'backup.pitrWindow');
    // Too young is a warning, not critical: a new cluster grows into its window, and retention that
    // keeps too few fulls shows up here for good, which the message names.
    return [
      {
        severity: reach >= need ? 'ok' : 'warning',
        message: `oldest full backup ${oldest.label} started ${formatAge(reach)} ago; backup.pitrWindow ${formatAge(need)}${reach >= need ? ' covered' : ' not covered yet (or retention.full keeps too few)'}`,
        values: { oldest_full_age_seconds: Math.round(reach), window_seconds: need, label: oldest.label },
      },
    ];
  },
};
