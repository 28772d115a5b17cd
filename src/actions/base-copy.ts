/**
 * The base_copy action: a base backup of the primary into the basebackup engine's repository
 * (backup.tool basebackup) WITHOUT pg_basebackup, for when the backup host's pg_basebackup is older than
 * the server (it refuses newer servers: Debian's 15 against 16 or 17). The low-level backup API
 * (basebackup-copy.ts: pg_backup_start / pg_backup_stop in one session, the files streamed with tar, the
 * backup_label from pg_backup_stop, the backup's WAL after it) fills a scratch directory in the
 * repository, which is then packed into the layout pg_basebackup -Ft -z writes (base.tar.gz,
 * pg_wal.tar.gz), so base_restore and the drill restore it alike.
 *
 * There is no backup_manifest (only pg_basebackup writes one). What stands in for it, honestly named:
 * wal_range.json, the backup's timeline and WAL range from pg_backup_start/stop in the manifest's own
 * "WAL-Ranges" form (the set choice of pitr_target reads it as it reads a manifest's), and SHA256SUMS of
 * the two archives, written at backup time, which the verify step checks (with the backup_label and the
 * WAL from the start to the stop segment being inside the archives). The directory gets its final name
 * only once all of it is written.
 */
import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { commandFailed, runAsOwner } from '../postgres/owner.js';
import { copyWithBackupApi } from './basebackup-copy.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface BaseCopyInput {
  /** The inventory host to back up (the primary). */
  from: string;
  checkpoint?: 'fast' | 'spread';
  /** Why this method, for the run output (e.g. "pg_basebackup 15 on bk1 cannot copy PostgreSQL 17"). */
  reason?: string;
}

function target(ctx: ActionContext, input: BaseCopyInput): { upstream: Host; repoPath: string } {
  const repoPath = ctx.inventory.backup?.repoPath;
  if (ctx.inventory.backup?.tool !== 'basebackup' || !repoPath) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'base_copy writes into the repository of backup.tool basebackup, and the inventory uses another tool', expected: 'backup.tool: basebackup' });
  }
  const upstream = ctx.hosts[input.from];
  if (!upstream) throw new PgplayError({ code: 'SEMANTIC', message: `base_copy.from: ${input.from} is not a host of the inventory`, expected: Object.keys(ctx.hosts).join(', ') });
  return { upstream, repoPath };
}

function label(now: Date): string {
  return `base-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

/**
 * $1 the scratch directory (data/ holds the copy), $2 the final directory, $3 the WAL-Ranges line.
 * pg_wal stays in base.tar.gz as an empty directory, its files go to pg_wal.tar.gz, as pg_basebackup's.
 */
export const PACK_SCRIPT = `set -e
umask 077
part=$1 final=$2
cd "$part"
# Member names without ./, as pg_basebackup writes them (backup_label, not ./backup_label).
(cd data && tar -c -z -f ../base.tar.gz --exclude='pg_wal/*' -- $(ls -A))
(cd data/pg_wal && tar -c -z -f ../../pg_wal.tar.gz -- $(ls -A))
printf '%s\\n' "$3" > wal_range.json
sha256sum base.tar.gz pg_wal.tar.gz > SHA256SUMS
rm -rf -- data
sync -f . 2>/dev/null || true
cd /
mv -- "$part" "$final"
echo "$final"`;

export const baseCopyAction: Action<BaseCopyInput> = {
  name: 'base_copy',
  connects: true,
  // Reads the server and writes into the repository: no fact of the database host changes.
  changes: [],
  summary:
    'backup.tool basebackup, for when pg_basebackup is older than the server: a base backup of the primary into backup.repoPath/base-<UTC start> ' +
    'with the low-level backup API (pg_backup_start/pg_backup_stop as the superuser, the files copied with tar), packed as pg_basebackup -Ft -z would ' +
    '(base.tar.gz, pg_wal.tar.gz). No backup_manifest: wal_range.json (timeline, start and end LSN) and SHA256SUMS of the archives stand in for it. ' +
    'Registers dir, start_lsn, stop_lsn, timeline.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['from'],
    properties: {
      from: { type: 'string', minLength: 1, description: 'The inventory host to back up (the primary); pgplay connects to it as its superuser and reads its PGDATA with tar.' },
      checkpoint: { type: 'string', enum: ['fast', 'spread'], default: 'fast', description: 'fast: the primary checkpoints at once; spread: at its configured pace.' },
      reason: { type: 'string', description: 'Why this method and not pg_basebackup, shown in the step\'s message.' },
    },
  },

  async check(ctx, input): Promise<Outcome> {
    const { upstream, repoPath } = target(ctx, input);
    return {
      changed: true,
      msg: `would copy ${upstream.name} into ${repoPath}/base-<UTC start> with the low-level backup API (pg_backup_start/pg_backup_stop and a file copy)${input.reason ? `: ${input.reason}` : ''}`,
    };
  },

  async apply(ctx, input): Promise<Outcome> {
    const { upstream, repoPath } = target(ctx, input);
    const started = Date.now();
    const final = posix.join(repoPath, label(new Date(started)));
    const part = `${final}.partial`;
    const made = await runAsOwner(ctx, ['sh', '-c', 'umask 077 && rm -rf -- "$1" && mkdir -p -- "$1/data"', 'pgplay-base-copy', part], { timeoutMs: 600_000 });
    if (made.exitCode !== 0) throw commandFailed(`cannot make ${part} on ${ctx.host.name}`, made);
    ctx.log(`copying ${upstream.name} with pg_backup_start/pg_backup_stop into ${part}${input.reason ? ` (${input.reason})` : ''}`);
    const c = await copyWithBackupApi(ctx, upstream, { fast: input.checkpoint !== 'spread', into: `${part}/data` });
    // The manifest's own WAL-Ranges form, which the repository listing reads from either file.
    const range = JSON.stringify({ Timeline: c.timeline, 'Start-LSN': c.startLsn, 'End-LSN': c.stopLsn });
    const packed = await runAsOwner(ctx, ['sh', '-c', PACK_SCRIPT, 'pgplay-base-pack', part, final, range], { env: { LC_ALL: 'C' } });
    if (packed.exitCode !== 0) throw commandFailed(`packing the base backup ${part} on ${ctx.host.name} failed`, packed);
    return {
      changed: true,
      msg: `copied ${upstream.name} (PostgreSQL ${c.major}) into ${final} with pg_backup_start/pg_backup_stop and a file copy, WAL ${c.startLsn} to ${c.stopLsn} (${c.walFiles} WAL files) in ${((Date.now() - started) / 1000).toFixed(1)}s${input.reason ? `: ${input.reason}` : ''}`,
      data: { dir: final, stdout: final, method: 'copy', start_lsn: c.startLsn, stop_lsn: c.stopLsn, timeline: c.timeline, duration_ms: Date.now() - started },
    };
  },
};

export default baseCopyAction;
