/**
 * With backup.tool basebackup the repository is a directory of `base-YYYYmmddTHHMMSSZ` directories
 * (nightly-backup.yml names them by their UTC start and moves them into place once complete). Each
 * becomes a full backup in pgBackRest's terms: its time from the name, its size from `du`.
 */
import { labelTime } from '../../postgres/base-repository.js';
import { fullBackupEntry, type BackupEntry } from '../../postgres/pgbackrest-info.js';
import { backupHostName } from '../context.js';
import type { StatusContext } from '../types.js';

const LIST = 'cd "$1" || exit 3; for d in base-*Z; do [ -d "$d" ] && du -sb -- "$d"; done; exit 0';

export async function listBasebackups(ctx: StatusContext): Promise<BackupEntry[]> {
  const host = backupHostName(ctx)!;
  const path = ctx.inventory.backup!.repoPath!;
  const r = await ctx.exec(host, ['/bin/sh', '-c', LIST, 'pgplay-status', path], { become: ctx.hosts[host]!.postgres.osUser });
  if (r.exitCode !== 0) throw new Error(`cannot list the backups in ${path} on ${host}: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
  return parseBasebackupListing(r.stdout);
}

/** `du -sb` lines ("123456\tbase-20260102T013000Z") into backup entries, oldest first. */
export function parseBasebackupListing(stdout: string): BackupEntry[] {
  const out: BackupEntry[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\d+)\s+(\S+)$/.exec(line.trim());
    const t = m ? labelTime(m[2]!) : undefined;
    if (!m || t === undefined) continue;
    // Only the start is known: the age counts from it, which never understates it.
    out.push(fullBackupEntry({ label: m[2]!, start: t, stop: t, size: Number(m[1]) }));
  }
  return out.sort((a, b) => a.start - b.start);
}
