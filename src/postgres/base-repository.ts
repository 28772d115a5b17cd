/**
 * The repository of the basebackup engine (backup.tool basebackup), as nightly-backup.yml writes it:
 *
 *   <repoPath>/base-<UTC start, YYYYMMDDTHHMMSSZ>/   one pg_basebackup in tar format: base.tar.gz,
 *                                                   pg_wal.tar.gz, backup_manifest (13+); or one
 *                                                   taken with the copy method (base_copy): the same
 *                                                   archives, wal_range.json and SHA256SUMS
 *   <repoPath>/wal/                                 the WAL archive (pgplay-wal push), one file per segment
 *   <repoPath>/bin/pgplay-wal                       the archive and restore command (templates/pgplay-wal.sh)
 *
 * One shell round trip lists it (LIST_SCRIPT); parseListing turns that into the backups, in the shape
 * pgBackRest's info gives them (so the set choice and the WAL check of backup-set.ts serve both
 * engines), and the archived segments. A backup's WAL range and consistency point come from its
 * backup_manifest ("WAL-Ranges": the timeline, the start LSN and the end LSN), its start time from its
 * directory name, and its stop time from the manifest file's modification time: pg_basebackup writes
 * the manifest last, after the end of the backup, so the time is never earlier than the consistency
 * point (a set is only chosen as "ended before the target" when it really did).
 */
import type { Host } from '../model/inventory.js';
import type { ArchivedSegment } from './backup-set.js';
import { commandFailed, runAsOwner } from './owner.js';
import { fullBackupEntry, type BackupEntry } from './pgbackrest-info.js';
import { parseLsn, segmentName, segmentOfLsn } from './recovery-target.js';
import type { ServerContext } from './server-context.js';

export const BACKUP_DIR = /^base-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/;
export const WAL_SEGMENT = /^[0-9A-F]{24}$/;

/** Paths inside a repository. */
export function repositoryPaths(repoPath: string): { wal: string; bin: string; script: string } {
  const root = repoPath.replace(/\/+$/, '');
  return { wal: `${root}/wal`, bin: `${root}/bin`, script: `${root}/bin/pgplay-wal` };
}

/**
 * Run as the PostgreSQL OS user with the repository path as $1. Prints one line per backup
 * ("backup <dir> <manifest mtime or -> <WAL-Ranges line or ->") and one per archived file
 * ("wal <name> <mtime>"); "norepo" when the directory is missing.
 */
export const LIST_SCRIPT = `repo=$1
[ -d "$repo" ] || { echo norepo; exit 0; }
for d in "$repo"/base-*; do
  [ -d "$d" ] || continue
  m="$d/backup_manifest"
  # A backup taken with the copy method has no manifest; its wal_range.json holds the same WAL-Ranges line.
  [ -f "$m" ] || m="$d/wal_range.json"
  if [ -f "$m" ]; then
    t=$(stat -c %Y "$m")
    r=$(grep -h -m 1 '"Start-LSN"' "$m" | tr -d ' \\t\\r' )
    echo "backup \${d##*/} $t \${r:--}"
  else
    echo "backup \${d##*/} - -"
  fi
done
if [ -d "$repo/wal" ]; then
  find "$repo/wal" -mindepth 1 -maxdepth 1 -type f ! -name '.*' -printf 'wal %f %T@\\n'
fi
exit 0`;

export interface BaseRepository {
  /** False when the repository directory does not exist (no backup was ever taken). */
  exists: boolean;
  /** Complete backups with a manifest, oldest first. */
  backups: BackupEntry[];
  /** Backup directories that cannot serve a point-in-time recovery (no manifest: PostgreSQL 12 or older, or unreadable). */
  unusable: string[];
  /** WAL segment files in the archive (not .history, .partial or .backup files), by name. */
  segments: ArchivedSegment[];
  /** Every file name in the archive, history files included. */
  files: string[];
}

/** The UTC start a backup directory is named by (base-YYYYmmddTHHMMSSZ), as epoch seconds. */
export function labelTime(label: string): number | undefined {
  const m = BACKUP_DIR.exec(label);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) / 1000;
}

/** The first range of a manifest's "WAL-Ranges", as LIST_SCRIPT prints it: {"Timeline":1,"Start-LSN":"0/2000028","End-LSN":"0/2000100"}. */
function walRange(text: string): { timeline: number; start: bigint; end: bigint } | undefined {
  const timeline = /"Timeline":(\d+)/.exec(text)?.[1];
  const start = /"Start-LSN":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(text)?.[1];
  const end = /"End-LSN":"([0-9A-Fa-f]+\/[0-9A-Fa-f]+)"/.exec(text)?.[1];
  const s = start ? parseLsn(start) : undefined;
  const e = end ? parseLsn(end) : undefined;
  if (!timeline || s === undefined || e === undefined) return undefined;
  return { timeline: Number(timeline), start: s, end: e };
}

export function parseListing(stdout: string, segmentSize: number): BaseRepository {
  const out: BaseRepository = { exists: true, backups: [], unusable: [], segments: [], files: [] };
  for (const line of stdout.split('\n')) {
    const [kind, name, time, rest] = line.trim().split(/\s+/, 4);
    if (kind === 'norepo') return { ...out, exists: false };
    if (kind === 'wal' && name) {
      out.files.push(name);
      if (WAL_SEGMENT.test(name)) out.segments.push({ name, time: Math.floor(Number(time) || 0) });
      continue;
    }
    if (kind !== 'backup' || !name || name.endsWith('.partial')) continue;
    const start = labelTime(name);
    const range = rest && rest !== '-' ? walRange(rest) : undefined;
    const stop = Number(time);
    if (start === undefined || !range || !Number.isFinite(stop)) {
      if (start !== undefined) out.unusable.push(name);
      continue;
    }
    const lsn = (v: bigint) => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;
    // Sizes are not read here (du over every backup would cost a pass over the repository).
    out.backups.push(
      fullBackupEntry({
        label: name,
        start,
        stop,
        size: 0,
        lsnStart: lsn(range.start),
        lsnStop: lsn(range.end),
        walStart: segmentName({ timeline: range.timeline, number: segmentOfLsn(range.start, segmentSize) }, segmentSize),
        walStop: segmentName({ timeline: range.timeline, number: segmentOfLsn(range.end, segmentSize) }, segmentSize),
      }),
    );
  }
  out.backups.sort((a, b) => a.label.localeCompare(b.label));
  out.segments.sort((a, b) => a.name.localeCompare(b.name));
  out.files.sort();
  return out;
}

/** Lists the repository on its host (as the PostgreSQL OS user); a listing that fails is an error naming the host. */
export async function readBaseRepository(ctx: ServerContext, repoHost: Host, repoPath: string, segmentSize: number): Promise<BaseRepository> {
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', LIST_SCRIPT, 'pgplay-base-repository', repoPath], { host: repoHost, env: { LC_ALL: 'C' }, timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw commandFailed(`cannot list the backup repository ${repoPath} on ${repoHost.name}`, r);
  return parseListing(r.stdout, segmentSize);
}

/**
 * The system identifier of the cluster a base backup was taken of: the first 8 bytes of global/pg_control
 * (ControlFileData.system_identifier, in the byte order of the machine that wrote it, which od reads in
 * this machine's: both are the database hosts' architecture) inside its base.tar.gz.
 */
const SYSTEM_ID_SCRIPT = `set -e
tar -x -z -O -f "$1/$2/base.tar.gz" --wildcards '*global/pg_control' | od -A n -t u8 -N 8 | tr -d ' '`;

export async function readBaseSystemId(ctx: ServerContext, repoHost: Host, repoPath: string, set: string): Promise<string | null> {
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', SYSTEM_ID_SCRIPT, 'pgplay-base-system-id', repoPath, set], { host: repoHost, env: { LC_ALL: 'C' }, timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw commandFailed(`cannot read the system identifier of ${repoPath}/${set} on ${repoHost.name}`, r);
  const id = r.stdout.trim();
  return /^\d+$/.test(id) ? id : null;
}
