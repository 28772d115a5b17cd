/**
 * What Barman's server holds, in the shape the point-in-time checks read (postgres/backup-set.ts): its
 * finished backups with their WAL and LSN range (show-backup) and the archived WAL segments (a listing
 * of the server's wals_directory, as barman sees it).
 */
import { PgplayError } from '../core/errors.js';
import type { ArchivedSegment } from '../postgres/backup-set.js';
import { fullBackupEntry, type BackupEntry } from '../postgres/pgbackrest-info.js';
import { parseShowBackup, parseWalListing, walsDirectory, type BarmanBackupDetail } from './output.js';
import { listBackups, type BarmanRunner } from './runner.js';

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

export async function readBarmanRepository(runner: BarmanRunner): Promise<BarmanRepository> {
  const done = (await listBackups(runner)).filter((b) => b.status === 'DONE');
  const backups: BackupEntry[] = [];
  // Oldest first, as the other engines list them.
  for (const b of [...done].reverse()) backups.push(backupEntry(parseShowBackup((await runner.run('show-backup', [runner.server, b.id])).json, runner.server)));
  const walsDir = walsDirectory((await runner.run('show-servers', [runner.server])).json, runner.server);
  if (!walsDir) throw new PgplayError({ code: 'STEP_FAILED', message: `barman show-servers ${runner.server} names no wals_directory` });
  const listing = await runner.exec(['find', walsDir, '-type', 'f', '-printf', '%f %T@\\n']);
  return { backups, segments: parseWalListing(listing), walsDir };
}
