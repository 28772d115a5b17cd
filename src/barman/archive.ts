/**
 * What Barman's server holds, in the shape the point-in-time checks read (postgres/backup-set.ts): its
 * finished backups with their WAL and LSN range (show-backup) and the archived WAL segments (a listing
 * of the server's wals_directory, as barman sees it).
 */
import { PgplayError } from '../core/errors.js';
import type { ArchivedSegment } from '../postgres/backup-set.js';
import { fullBackupEntry, type BackupEntry } from '../postgres/pgbackrest-info.js';
import { basebackupsDirectory, parseListBackups, parseShowBackup, parseWalListing, walsDirectory, type BarmanBackupDetail } from './output.js';
import type { BarmanRunner } from './runner.js';

export interface BarmanRepository {
  backups: BackupEntry[];
  segments: ArchivedSegment[];
  walsDir: string;
}

/** A finished backup of show-backup; its size is the backup's own disk usage (without its WAL). */
export function backupEntry(d: BarmanBackupDetail): BackupEntry {
  const start = d.beginTime ?? 0;
  return fullBackupEntry({
    label: d.id,
    start,
    stop: d.endTime ?? start,
    size: d.sizeBytes ?? 0,
    lsnStart: d.beginLsn,
    lsnStop: d.endLsn,
    walStart: d.beginWal,
    walStop: d.endWal,
  });
}

/** A barman command's JSON output (`barman -f json <command> <args>`), however the caller runs it. */
export type BarmanJson = (command: string, args: string[]) => Promise<Record<string, unknown>>;

/** The server's finished backups, oldest first: list-backups, then show-backup of each (its begin time and WAL range). */
export async function finishedBackups(server: string, json: BarmanJson): Promise<BackupEntry[]> {
  const done = parseListBackups(await json('list-backups', [server]), server).filter((b) => b.status === 'DONE');
  const backups: BackupEntry[] = [];
  // Barman lists the newest first; the other engines list the oldest first.
  for (const b of [...done].reverse()) backups.push(backupEntry(parseShowBackup(await json('show-backup', [server, b.id]), server)));
  return backups;
}

export async function readBarmanRepository(runner: BarmanRunner): Promise<BarmanRepository> {
  const backups = await finishedBackups(runner.server, async (command, args) => (await runner.run(command, args)).json);
  const walsDir = walsDirectory((await runner.run('show-servers', [runner.server])).json, runner.server);
  if (!walsDir) throw new PgplayError({ code: 'STEP_FAILED', message: `barman show-servers ${runner.server} names no wals_directory` });
  const listing = await runner.exec(['find', walsDir, '-type', 'f', '-printf', '%f %T@\\n']);
  return { backups, segments: parseWalListing(listing), walsDir };
}

/**
 * The system identifier of the cluster a backup was taken of: the systemid line of its backup.info
 * (show-backup's JSON leaves it out), read as barman. A restore compares it with the target host's cluster.
 */
export async function barmanBackupSystemId(runner: BarmanRunner, id: string): Promise<string | null> {
  const dir = basebackupsDirectory((await runner.run('show-servers', [runner.server])).json, runner.server);
  if (!dir) throw new PgplayError({ code: 'STEP_FAILED', message: `barman show-servers ${runner.server} names no basebackups_directory` });
  const out = await runner.exec(['sed', '-n', 's/^systemid=//p', `${dir}/${id}/backup.info`]);
  return /^\d+$/.test(out.trim()) ? out.trim() : null;
}
