/**
 * The base_restore action: restores a base backup of the basebackup engine's repository (backup.tool
 * basebackup, see postgres/base-repository.ts) into this host's PGDATA, for a standby or a drill copy.
 * It unpacks base.tar.gz into PGDATA and pg_wal.tar.gz into its pg_wal; the recovery action then writes
 * the restore_command that replays the WAL archive (pgplay-wal fetch) and the standby or target settings.
 *
 * The guards are pgBackRest's restore's (pgbackrest/restore.ts): never over a running cluster, never
 * over the inventory's primary unless allow_primary, never into another host's PGDATA, never over
 * another cluster unless replace (and then only one without user data, or the one replace_sysid
 * names). Before the old contents go, global/pg_control is removed first, so a restore that stops
 * half-way leaves nothing that can be started as a cluster.
 *
 * The repository's directory must be visible on this host at backup.repoPath (the same machine, or a
 * shared mount): the restore reads it here, and so does the restore_command later.
 */
import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { LIST_SCRIPT, parseListing } from '../postgres/base-repository.js';
import { DEFAULT_WAL_SEGMENT_SIZE } from '../postgres/recovery-target.js';
import { commandFailed, requirePgdata, runAsOwner } from '../postgres/owner.js';
import { commandLine, emptyPgdataLines } from './shell-export.js';
import { wipe } from './basebackup.js';
import { disarm } from './identity-guard.js';
import { restoreGuards } from './pgbackrest/restore.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface BaseRestoreInput {
  set?: string;
  allow_primary?: boolean;
  replace?: boolean;
  replace_sysid?: string;
}

function guard(message: string, hint: string): PgplayError {
  return new PgplayError({ code: 'GUARD', message, hint });
}

interface Plan {
  outcome: Outcome;
  pgdata: string;
  dir: string;
  set: string;
  lsnStart: string | null;
  occupied: boolean;
}

/** The set to restore, read from the repository as this host sees it: the one named, else the newest. */
async function chooseSet(ctx: ActionContext, repoPath: string, named: string): Promise<{ set: string; lsnStart: string | null }> {
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', LIST_SCRIPT, 'pgplay-base-repository', repoPath], { env: { LC_ALL: 'C' }, timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw commandFailed(`cannot list the backup repository ${repoPath} on ${ctx.host.name}`, r);
  const listing = parseListing(r.stdout, DEFAULT_WAL_SEGMENT_SIZE);
  const repoHost = ctx.inventory.backup?.repoHost;
  if (!listing.exists) {
    throw guard(
      `cannot restore into ${ctx.host.name}: the backup repository ${repoPath} does not exist on ${ctx.host.name}`,
      `with backup.tool basebackup the database hosts read the repository's directory${repoHost ? ` of ${repoHost}` : ''} at ${repoPath}: on the same machine, or through a shared mount; take a backup first (nightly-backup.yml)`,
    );
  }
  const labels = [...listing.backups.map((b) => b.label), ...listing.unusable].sort();
  if (labels.length === 0) throw guard(`no base backup in ${repoPath} to restore into ${ctx.host.name}`, 'take a backup first (nightly-backup.yml)');
  const set = named || labels[labels.length - 1]!;
  if (!labels.includes(set)) throw guard(`backup set ${set} is not in ${repoPath}`, `the sets there: ${labels.join(', ')}`);
  return { set, lsnStart: listing.backups.find((b) => b.label === set)?.lsn_start ?? null };
}

async function plan(ctx: ActionContext, input: BaseRestoreInput): Promise<Plan> {
  const pgdata = requirePgdata(ctx.host);
  const repoPath = ctx.inventory.backup?.repoPath;
  if (ctx.inventory.backup?.tool !== 'basebackup' || !repoPath) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'base_restore restores backups of backup.tool basebackup, and the inventory uses another tool', expected: 'backup.tool: basebackup' });
  }
  // Refused in plan too: whose directory it is, whether it is the primary's, another cluster.
  const { notes, state } = await restoreGuards(
    ctx,
    { command: 'restore', delta: true, allow_primary: input.allow_primary === true, replace: input.replace === true, replace_sysid: input.replace_sysid ?? '' },
    pgdata,
  );
  const { set, lsnStart } = await chooseSet(ctx, repoPath, input.set ?? '');
  const dir = posix.join(repoPath, set);
  const occupied = state.contents === 'nonempty';
  return {
    pgdata,
    dir,
    set,
    lsnStart,
    occupied,
    outcome: {
      changed: true,
      // What the plan chose, for the break-glass export (the script restores that very set).
      data: { set, dir, pgdata },
      msg: `would restore ${dir} into ${pgdata}${occupied ? ' (its contents are deleted first)' : ''}${notes.length ? ` (${notes.join('; ')})` : ''}`,
    },
  };
}

/** Unpacks base.tar.gz into PGDATA, then pg_wal.tar.gz into its pg_wal (pg_basebackup -Ft -X stream writes both). */
const UNPACK_SCRIPT = `set -e
src=$1 dst=$2
tar -x -z -p -f "$src/base.tar.gz" -C "$dst"
mkdir -p "$dst/pg_wal"
chmod 0700 "$dst/pg_wal"
if [ -f "$src/pg_wal.tar.gz" ]; then tar -x -z -p -f "$src/pg_wal.tar.gz" -C "$dst/pg_wal"; fi
test -f "$dst/PG_VERSION" && test -f "$dst/global/pg_control" && test -f "$dst/backup_label"`;

export const baseRestoreAction: Action<BaseRestoreInput> = {
  name: 'base_restore',
  summary:
    'backup.tool basebackup: restores a base backup (tar format) of the repository into this host\'s PGDATA, the newest unless set names one; ' +
    'the recovery action writes the restore_command and the standby or target settings. Guarded like pgbackrest restore: never over a running ' +
    'cluster, the inventory\'s primary (unless allow_primary), another host\'s PGDATA, or another cluster (unless replace).',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      set: { type: 'string', pattern: '^(base-[0-9]{8}T[0-9]{6}Z)?$', description: "The backup to restore (a base-<UTC start> directory of backup.repoPath); '' or none: the newest." },
      allow_primary: { type: 'boolean', default: false, description: "Restore over the inventory's primary (stopped): rebuilding a fenced old primary, or restoring a lost one." },
      replace: { type: 'boolean', default: false, description: 'Allow replacing another cluster in PGDATA (one without user data, unless replace_sysid names it).' },
      replace_sysid: { type: 'string', pattern: '^([0-9]+)?$', description: 'With replace: the system identifier of the other cluster that may be replaced although it holds user data.' },
    },
  },
  destructive: () => true,
  // A restore rewrites PGDATA; the server stays stopped.
  changes: ['pgdata'],

  async check(ctx, input) {
    return (await plan(ctx, input)).outcome;
  },

  // The set the plan chose; the guards that need pgplay (whose cluster it is) are comments, the one that
  // needs nothing (a running server there) is checked when the script runs.
  async exportShell(ctx, input, planned) {
    const chosen = planned.data as { set?: string; dir?: string; pgdata?: string } | undefined;
    const p = chosen?.dir && chosen.pgdata ? { dir: chosen.dir, pgdata: chosen.pgdata, set: chosen.set ?? '' } : await plan(ctx, input);
    const owner = ctx.host.postgres.osUser;
    return {
      comments: [
        `restores ${p.set} of the repository (the newest at plan time${input.set ? ', as named' : ''}); pgplay checked that ${p.pgdata} holds no other cluster it must not replace`,
      ],
      commands: [
        ...emptyPgdataLines(ctx.host, p.pgdata, 'restored'),
        commandLine(['/bin/sh', '-c', UNPACK_SCRIPT, 'pgplay-base-restore', p.dir, p.pgdata], owner),
      ],
    };
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    const started = Date.now();
    if (p.occupied) {
      await disarm(ctx, p.pgdata);
      await wipe(ctx, p.pgdata);
    }
    ctx.log(`unpacking ${p.dir} into ${p.pgdata}`);
    const r = await runAsOwner(ctx, ['/bin/sh', '-c', UNPACK_SCRIPT, 'pgplay-base-restore', p.dir, p.pgdata], { env: { LC_ALL: 'C' } });
    if (r.exitCode !== 0) throw commandFailed(`restoring ${p.dir} into ${p.pgdata} on ${ctx.host.name} failed`, r);
    return {
      changed: true,
      msg: `restored ${p.set} into ${p.pgdata}${p.occupied ? ' (old contents deleted)' : ''} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
      data: { set: p.set, backup_type: 'full', recovery_start: p.lsnStart, pgdata: p.pgdata, replaced: p.occupied, duration_ms: Date.now() - started },
    };
  },
};

export default baseRestoreAction;
