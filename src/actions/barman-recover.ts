/**
 * barman recover, for backup.tool barman: the step runs on the target database host (a standby to
 * build, a drill copy); Barman runs on the repository host and copies the backup into this host's PGDATA
 * over SSH (--remote-ssh-command "ssh postgres@<this host's address>": the barman user's key is in the
 * PostgreSQL OS user's authorized_keys, include/backup/barman/trust.yml), or itself with
 * backup.barman.local (remoteArgs).
 *
 * The guards are pgBackRest's restore's (pgbackrest/restore.ts restoreGuards): never over a running
 * cluster, never over the inventory's primary unless allow_primary, never into another host's PGDATA,
 * never over another cluster unless replace. The old contents go first, global/pg_control first of
 * all (identity-guard.ts disarm), so a recovery that stops half-way leaves nothing startable.
 *
 * Retention never deletes the backup being recovered: before the copy the backup gets Barman's keep
 * annotation (`barman keep --target full`), which `barman cron` and `barman delete` honour, and the
 * annotation is released afterwards (unless the backup was kept already).
 *
 * Without a target, Barman copies the backup and the WAL it needs into pg_wal and writes no recovery
 * settings: pgplay's recovery action writes them (standby or target, and a restore_command running
 * barman-wal-restore against the repository host's inventory address).
 */
import { PgplayError } from '../core/errors.js';
import { requirePgdata } from '../postgres/owner.js';
import { listBackups, type BarmanRunner } from '../barman/runner.js';
import { wipe } from './basebackup.js';
import { disarm } from './identity-guard.js';
import { restoreGuards } from './pgbackrest/restore.js';
import type { BarmanInput } from './barman-input.js';
import type { ActionContext, Outcome } from './types.js';

/** What a recover will do, as check found it (its outcome's data, which the export reads). */
export interface RecoverPlan {
  pgdata: string;
  id: string;
  /** The backup has a keep annotation already (the user's): recover neither adds nor releases one. */
  kept: boolean;
  occupied: boolean;
  notes: string[];
}

async function plan(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput): Promise<RecoverPlan> {
  const pgdata = requirePgdata(ctx.host);
  if (ctx.host.name === runner.host.name) {
    throw new PgplayError({ code: 'SEMANTIC', message: `barman recover runs on the database host to restore into, not on the Barman host ${runner.host.name}`, expected: 'hosts: the standby or drill host' });
  }
  const { notes, state } = await restoreGuards(
    ctx,
    { command: 'restore', delta: true, allow_primary: input.allow_primary === true, replace: input.replace === true, replace_sysid: input.replace_sysid ?? '' },
    pgdata,
  );
  const backups = await listBackups(runner);
  const done = backups.filter((b) => b.status === 'DONE');
  if (done.length === 0) throw new PgplayError({ code: 'GUARD', message: `Barman's server ${runner.server} on ${runner.host.name} has no finished backup to recover into ${ctx.host.name}`, hint: 'take one first (nightly-backup.yml)' });
  const id = input.backup_id || done[0]!.id;
  const chosen = backups.find((b) => b.id === id);
  if (!chosen || chosen.status !== 'DONE') {
    throw new PgplayError({ code: 'GUARD', message: `backup ${id} of server ${runner.server} is ${chosen ? `not usable (status ${chosen.status})` : 'not in Barman'}`, hint: `the finished backups: ${done.map((b) => b.id).join(', ')}` });
  }
  return { pgdata, id, kept: (chosen.retention ?? '').startsWith('KEEP'), occupied: state.contents === 'nonempty', notes };
}

export async function recoverGuardsOnly(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput): Promise<Outcome & { data: RecoverPlan }> {
  remoteArgs(ctx, runner);
  const p = await plan(ctx, runner, input);
  return {
    changed: true,
    msg: `would recover backup ${p.id} of server ${runner.server} into ${ctx.host.name}:${p.pgdata}${p.occupied ? ' (its contents are deleted first)' : ''}${p.notes.length ? ` (${p.notes.join('; ')})` : ''}`,
    data: { ...p },
  };
}

/** The barman recover arguments after the server, backup and destination: targets and modes. */
export function recoverOptions(input: BarmanInput): string[] {
  const args: string[] = [];
  if (input.target_time) args.push('--target-time', input.target_time);
  if (input.target_name) args.push('--target-name', input.target_name);
  if (input.target_xid) args.push('--target-xid', input.target_xid);
  if (input.target_lsn) args.push('--target-lsn', input.target_lsn);
  if (input.target_immediate) args.push('--target-immediate');
  const targets = args.filter((a) => a.startsWith('--target-')).length;
  if (targets > 1) throw new PgplayError({ code: 'SEMANTIC', message: 'barman recover takes one recovery target', expected: 'one of target_time, target_name, target_xid, target_lsn, target_immediate' });
  if (input.target_action) {
    if (targets === 0) throw new PgplayError({ code: 'SEMANTIC', message: 'target_action needs a recovery target', expected: 'one of target_time, target_name, target_xid, target_lsn, target_immediate' });
    args.push('--target-action', input.target_action);
  }
  if (input.standby_mode) args.push('--standby-mode');
  if (input.get_wal) args.push('--get-wal');
  return args;
}

/**
 * How Barman reaches the PGDATA it recovers into: over SSH as the PostgreSQL OS user, or, when Barman runs
 * on that very machine as that very user (backup.barman.local), by writing it itself: the files are then
 * the server's, as PostgreSQL requires.
 */
export function remoteArgs(ctx: Pick<ActionContext, 'host' | 'inventory'>, runner: Pick<BarmanRunner, 'host' | 'user'>): string[] {
  if (ctx.inventory.backup?.barman?.local) {
    if (ctx.host.address !== runner.host.address || ctx.host.postgres.osUser !== runner.user) {
      throw new PgplayError({
        code: 'SEMANTIC',
        message: `backup.barman.local: Barman runs as ${runner.user} on ${runner.host.address}, and cannot write ${ctx.host.name}'s PGDATA (${ctx.host.postgres.osUser} on ${ctx.host.address}) itself`,
        expected: 'every host on the repository host\'s machine with the same PostgreSQL OS user, or backup.barman.local: false',
      });
    }
    return [];
  }
  return ['--remote-ssh-command', `ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ${ctx.host.postgres.osUser}@${ctx.host.address}`];
}

export async function recover(ctx: ActionContext, runner: BarmanRunner, input: BarmanInput): Promise<Outcome> {
  const options = recoverOptions(input);
  // Refused before anything is kept or wiped.
  const remote = remoteArgs(ctx, runner);
  const p = await plan(ctx, runner, input);
  const started = Date.now();
  // Kept from retention while it is copied: barman cron or a delete cannot remove it under the copy.
  if (!p.kept) await runner.run('keep', ['--target', 'full', runner.server, p.id]);
  try {
    if (p.occupied) {
      await disarm(ctx, p.pgdata);
      await wipe(ctx, p.pgdata);
    }
    ctx.log(`barman recover ${runner.server} ${p.id} into ${ctx.host.name}:${p.pgdata}`);
    await runner.run('recover', [...remote, ...options, runner.server, p.id, p.pgdata]);
  } finally {
    if (!p.kept) await runner.run('keep', ['--release', runner.server, p.id]).catch((e: Error) => ctx.log(`could not release the keep annotation of ${p.id}: ${e.message}`));
  }
  return {
    changed: true,
    msg: `recovered backup ${p.id} of server ${runner.server} into ${p.pgdata}${p.occupied ? ' (old contents deleted)' : ''} in ${((Date.now() - started) / 1000).toFixed(1)}s`,
    data: { set: p.id, backup_id: p.id, backup_type: 'full', pgdata: p.pgdata, replaced: p.occupied, duration_ms: Date.now() - started },
  };
}
