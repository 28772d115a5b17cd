/**
 * What Barman's server holds, in the shape the point-in-time checks read (postgres/backup-set.ts): its
 * finished backups with their WAL and LSN range (show-backup) and the archived WAL segments (a listing
 * of the server's wals_directory, as barman sees it).
 */
import { PgplayError } from '../core/errors.js';
import type { ArchivedSegment } from '../postgres/backup-set.js';
import type { BackupEntry } from '../postgres/pgbackrest-info.js';
import { basebackupsDirectory, parseShowBackup, parseWalListing, walsDirectory, type BarmanBackupDetail } from './output.js';
import { listBackups, type BarmanRunner } from './runner.js';

export interface BarmanRepository {
  backups: BackupEntry[];
  segments: ArchivedSegment[];
  walsDir: string;
}

const iso = (epoch: number) => new Date(epoch * 1000).toISOString();

export function backupEntry(d: BarmanBackupDetail): BackupEntry {
  const start = d.beginTime ?? 0;
  const stop = d.endTime ?? start;
  return {
    label: d.id,
    type: 'full',
    prior: null,
    reference: [],
    start,
    stop,
    start_time: iso(start),
    stop_time: iso(stop),
    size: d.sizeBytes ?? 0,
    delta: d.sizeBytes ?? 0,
    repo_size: d.sizeBytes ?? 0,
    repo_delta: d.sizeBytes ?? 0,
    lsn_start: d.beginLsn,
    lsn_stop: d.endLsn,
    wal_start: d.beginWal,
    wal_stop: d.endWal,
    error: false,
    database_id: null,
    repo: null,
  };
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
