/**
 * With backup.tool basebackup the repository is a directory of `base-YYYYmmddTHHMMSSZ` directories
 * (nightly-backup.yml names them by their UTC start and moves them into place once complete). Each
 * becomes a full backup in pgBackRest's terms: its time from the name, its size from `du`.
 */
import type { BackupEntry } from '../../postgres/pgbackrest-info.js';
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
    const m = /^(\d+)\s+(base-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z)$/.exec(line.trim());
    if (!m) continue;
    const t = Date.UTC(+m[3]!, +m[4]! - 1, +m[5]!, +m[6]!, +m[7]!, +m[8]!) / 1000;
    const size = Number(m[1]);
    out.push({
      label: m[2]!,
      type: 'full',
      prior: null,
      reference: [],
      start: t,
      // Only the start is known: the age counts from it, which never understates it.
      stop: t,
      start_time: new Date(t * 1000).toISOString(),
      stop_time: new Date(t * 1000).toISOString(),
      size,
      delta: size,
      repo_size: size,
      repo_delta: size,
      lsn_start: null,
      lsn_stop: null,
      wal_start: null,
      wal_stop: null,
      error: false,
      database_id: null,
      repo: null,
    });
  }
  return out.sort((a, b) => a.start - b.start);
}
