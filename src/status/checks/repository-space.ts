/**
 * The next full backup needs about as much room in the repository as the last one took (its
 * repository size): less free space than that is critical, less than twice that a warning. Free
 * space is what `df` reports for backup.repoPath on the repository host (the primary without one); with
 * backup.tool barman for the server's backup_directory, as the barman OS user.
 */
import { formatBytes } from '../format.js';
import { BARMAN_USER } from '../../barman/runner.js';
import { backupHostName } from '../context.js';
import { barmanBackupDirectory } from './barman.js';
import type { StatusCheck } from '../types.js';
import { newestOf, repositoryBackups, withoutBackup } from './backups.js';

export const repositorySpaceCheck: StatusCheck = {
  id: 'repository-space',
  title: 'Repository free space for the next full backup',
  async run(ctx) {
    const missing = withoutBackup(ctx);
    if (missing) return missing;
    const host = backupHostName(ctx)!;
    // Barman keeps the backups in its server's backup_directory, readable by the barman OS user.
    const barman = ctx.inventory.backup!.tool === 'barman';
    const path = barman ? await barmanBackupDirectory(ctx) : ctx.inventory.backup!.repoPath!;
    const df = await ctx.exec(host, ['df', '-P', '-B1', path], { become: barman ? BARMAN_USER : ctx.hosts[host]!.postgres.osUser });
    const available = parseDfAvailable(df.stdout);
    if (df.exitCode !== 0 || available === undefined) {
      return [{ severity: 'critical', host, message: `cannot read the free space of ${path}: ${df.stderr.trim() || `df exited ${df.exitCode}`}` }];
    }
    const lastFull = newestOf((await repositoryBackups(ctx)).backups, 'full');
    const values = { available_bytes: available, expected_full_bytes: lastFull?.repo_size ?? null };
    if (!lastFull) return [{ severity: 'ok', host, message: `${formatBytes(available)} free in ${path}; no full backup yet to size the next one by`, values }];
    const need = lastFull.repo_size;
    const severity = available < need ? 'critical' : available < 2 * need ? 'warning' : 'ok';
    return [{ severity, host, message: `${formatBytes(available)} free in ${path}; the last full backup took ${formatBytes(need)}`, values }];
  },
};

/** The "Available" column of `df -P -B1 PATH` (the second line: filesystem, size, used, available, ...). */
export function parseDfAvailable(stdout: string): number | undefined {
  const line = stdout.trim().split('\n')[1];
  const cols = line?.trim().split(/\s+/);
  const n = Number(cols?.[3]);
  return cols && cols.length >= 6 && Number.isFinite(n) ? n : undefined;
}
