/**
 * The wal_archive action: the questions a procedure asks of the WAL archive, whatever backup engine
 * keeps it, so that one playbook step serves every backup.tool (pitr-drill.yml's archive evidence):
 *
 * - check: the primary's current WAL reaches the archive (it switches WAL and waits until the
 *   segment is archived). pgbackrest: `pgbackrest check`. basebackup: pg_switch_wal() on the
 *   primary, pg_stat_archiver polled until that segment is archived (or archive_command failed on
 *   it, or archive_timeout passed), then the segment looked up in the repository's wal/ directory.
 * - info: what the repository holds, registering archive_min and archive_max (the oldest and newest
 *   archived segment). pgbackrest: `pgbackrest info`. basebackup: a listing of backup.repoPath.
 *
 * - visible (basebackup): this host sees the repository where archive_command and restore_command look.
 *
 * With pgbackrest the step is the pgbackrest action's own command, unchanged (same output, same
 * registered values).
 */
import { PgplayError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { Host } from '../model/inventory.js';
import { readBaseRepository, repositoryPaths } from '../postgres/base-repository.js';
import { runAsOwner } from '../postgres/owner.js';
import { DEFAULT_WAL_SEGMENT_SIZE } from '../postgres/recovery-target.js';
import pgbackrestAction from './pgbackrest.js';
import barmanAction from './barman.js';
import { readBarmanRepository } from '../barman/archive.js';
import { barmanHost, barmanServer, BarmanRunner } from '../barman/runner.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface WalArchiveInput {
  command: 'check' | 'info' | 'visible';
  /** basebackup check: how long archiving may take (seconds); pgBackRest's archive-timeout is 60. */
  archive_timeout?: number;
}

function primaryOf(ctx: ActionContext): Host {
  const p = Object.values(ctx.hosts).find((h) => h.role === 'primary');
  if (!p) throw new PgplayError({ code: 'SEMANTIC', message: 'the inventory has no primary whose WAL could be archived', expected: 'a host with role primary' });
  return p;
}

function repoPathOf(ctx: ActionContext): string {
  const repoPath = ctx.inventory.backup?.repoPath;
  if (!repoPath) throw new PgplayError({ code: 'SEMANTIC', message: 'the inventory has no backup.repoPath', expected: 'backup.repoPath' });
  return repoPath;
}

interface ArchiverRow {
  last_archived_wal: string | null;
  last_failed_wal: string | null;
  failed_since: boolean;
}

/** Switches the primary's WAL and waits until the segment is in the repository's wal/ (or archive_command failed on it). */
async function checkBase(ctx: ActionContext, input: WalArchiveInput): Promise<Outcome> {
  const primary = primaryOf(ctx);
  const timeoutMs = (input.archive_timeout ?? 60) * 1000;
  const client = await ctx.connectPostgres({ hostName: primary.name });
  let wal: string;
  let where = '';
  try {
    const sw = await client.query<{ wal: string; mode: string; started: string }>(
      "SELECT pg_walfile_name(pg_switch_wal()) AS wal, current_setting('archive_mode') AS mode, now()::text AS started",
    );
    const row = sw.rows[0]!;
    wal = row.wal;
    where = `${repositoryPaths(repoPathOf(ctx)).wal}/${wal}`;
    if (row.mode === 'off') {
      throw new PgplayError({ code: 'STEP_FAILED', message: `${primary.name} does not archive WAL (archive_mode is off)`, hint: 'run nightly-backup.yml or prepare.yml: they turn archiving on' });
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await client.query<ArchiverRow>(
        'SELECT last_archived_wal, last_failed_wal, coalesce(last_failed_time >= $1::timestamptz, false) AS failed_since FROM pg_stat_archiver',
        [row.started],
      );
      const a = r.rows[0]!;
      // The file itself is the evidence (last_archived_wal may name a .backup or .history file).
      if ((await ctx.transport.stat(where, { become: ctx.host.postgres.osUser })).exists) break;
      if (a.failed_since && a.last_failed_wal === wal) {
        throw new PgplayError({
          code: 'STEP_FAILED',
          message: `${primary.name} failed to archive WAL segment ${wal}: archive_command exited non-zero (its server log says why)`,
          hint: `the archive is ${ctx.host.name}:${repositoryPaths(repoPathOf(ctx)).wal}; it must be writable by ${primary.postgres.osUser} on ${primary.name}`,
        });
      }
      if (Date.now() > deadline) {
        throw new PgplayError({
          code: 'STEP_FAILED',
          message: `WAL segment ${wal} of ${primary.name} did not reach ${ctx.host.name}:${where} within ${timeoutMs / 1000}s (the primary's last archived: ${a.last_archived_wal ?? 'none'})`,
          hint: `look at pg_stat_archiver and the server log of the primary; its archive_command must write into the repository ${ctx.host.name} holds (with backup.tool basebackup both see backup.repoPath: one machine, or a shared mount)`,
        });
      }
      await sleep(200, ctx.signal);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return { changed: false, msg: `WAL segment ${wal} of ${primary.name} reached the repository (${where})`, data: { wal, archived: where } };
}

/**
 * basebackup: this host (one that archives, or restores) sees the repository where archive_command and
 * restore_command look: it can run bin/pgplay-wal and write wal/ as the PostgreSQL OS user. Refused
 * (exit 3) otherwise, before archiving is turned on: every segment would fail to archive.
 */
async function visibleBase(ctx: ActionContext): Promise<Outcome> {
  const repoPath = repoPathOf(ctx);
  const { script, wal } = repositoryPaths(repoPath);
  const r = await runAsOwner(ctx, ['test', '-x', script, '-a', '-w', wal], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (r.exitCode !== 0) {
    const repoHost = ctx.inventory.backup?.repoHost ?? 'the primary';
    throw new PgplayError({
      code: 'GUARD',
      message: `${ctx.host.name} cannot run ${script} or write ${wal} as ${ctx.host.postgres.osUser}: with backup.tool basebackup its archive_command and restore_command use the repository of ${repoHost} at that path`,
      hint: `make ${repoPath} of ${repoHost} visible on ${ctx.host.name} at the same path (the same machine, or a shared mount such as NFS) and writable by ${ctx.host.postgres.osUser}, then run again; archiving was not turned on`,
    });
  }
  return { changed: false, msg: `${ctx.host.name} sees the repository: ${script} and ${wal}`, data: { script, wal } };
}

async function infoBase(ctx: ActionContext): Promise<Outcome> {
  const repoPath = repoPathOf(ctx);
  const listing = await readBaseRepository(ctx, ctx.host, repoPath, DEFAULT_WAL_SEGMENT_SIZE);
  const min = listing.segments[0]?.name ?? null;
  const max = listing.segments.at(-1)?.name ?? null;
  const labels = [...listing.backups.map((b) => b.label), ...listing.unusable].sort();
  return {
    changed: false,
    msg: listing.exists
      ? `${labels.length} base backup${labels.length === 1 ? '' : 's'} (newest ${labels.at(-1) ?? 'none'}); WAL archive ${min ?? 'empty'}${max && max !== min ? `..${max}` : ''}`
      : `${repoPath} does not exist yet`,
    data: { backups: labels, newest: labels.at(-1) ?? null, archive_min: min, archive_max: max, wal_files: listing.files.length },
  };
}

function usesPgbackrest(ctx: ActionContext): boolean {
  const tool = ctx.inventory.backup?.tool;
  return tool !== 'basebackup' && tool !== 'barman';
}

/** backup.tool barman: check is `barman switch-wal --force --archive` (the barman action's), info reads Barman's WAL archive. */
async function barmanCommand(ctx: ActionContext, input: WalArchiveInput, apply: boolean): Promise<Outcome> {
  if (input.command === 'visible') throw new PgplayError({ code: 'SEMANTIC', message: 'wal_archive visible is for backup.tool basebackup', expected: 'command check or info with barman' });
  if (input.command === 'check') {
    const step = { command: 'switch-wal' as const, ...(input.archive_timeout ? { archive_timeout: input.archive_timeout } : {}) };
    return apply ? barmanAction.apply(ctx, step, { changed: true }) : barmanAction.check(ctx, step);
  }
  const runner = new BarmanRunner(ctx, barmanHost(ctx, ctx.inventory), barmanServer(ctx.inventory));
  const r = await readBarmanRepository(runner);
  const min = r.segments[0]?.name ?? null;
  const max = r.segments.at(-1)?.name ?? null;
  const labels = r.backups.map((b) => b.label);
  return {
    changed: false,
    msg: `${labels.length} Barman backup${labels.length === 1 ? '' : 's'} (newest ${labels.at(-1) ?? 'none'}); WAL archive ${min ?? 'empty'}${max && max !== min ? `..${max}` : ''}`,
    data: { backups: labels, newest: labels.at(-1) ?? null, archive_min: min, archive_max: max, wal_files: r.segments.length },
  };
}

export const walArchiveAction: Action<WalArchiveInput> = {
  name: 'wal_archive',
  connects: true,
  // WAL switched and archived: no fact describes the archive.
  changes: [],
  summary:
    'The WAL archive of the inventory\'s backup engine: check (switch the primary\'s WAL and prove the segment reached the repository) and info ' +
    '(what the repository holds: archive_min, archive_max). pgbackrest: its check and info commands; basebackup: pg_stat_archiver and backup.repoPath.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['command'],
    properties: {
      command: { type: 'string', enum: ['check', 'info', 'visible'], description: 'visible (basebackup only): this host can run bin/pgplay-wal and write wal/ as the PostgreSQL OS user; refused (exit 3) otherwise.' },
      archive_timeout: { type: 'integer', minimum: 1, description: 'basebackup check: seconds archiving may take (default 60, as pgBackRest\'s archive-timeout).' },
    },
  },
  readOnly(input) {
    return input.command !== 'check';
  },

  async check(ctx, input) {
    if (ctx.inventory.backup?.tool === 'barman') {
      if (input.command === 'check' && ctx.checkMode) return { changed: false, skipped: true, msg: 'not run under --check: it forces a WAL switch on the primary and archives it' };
      return input.command === 'check' ? { changed: true, msg: 'would switch WAL and wait until Barman archives it' } : barmanCommand(ctx, input, false);
    }
    if (input.command === 'visible') {
      if (usesPgbackrest(ctx)) throw new PgplayError({ code: 'SEMANTIC', message: 'wal_archive visible is for backup.tool basebackup', expected: 'command check or info with pgbackrest' });
      return visibleBase(ctx);
    }
    if (usesPgbackrest(ctx)) return pgbackrestAction.check(ctx, { command: input.command });
    if (input.command === 'info') return infoBase(ctx);
    // Switching WAL archives a segment on the primary: a change plan must not make.
    if (ctx.checkMode) return { changed: false, skipped: true, msg: 'not run under --check: it forces a WAL switch on the primary and archives it' };
    return checkBase(ctx, input);
  },

  async apply(ctx, input, planned) {
    if (ctx.inventory.backup?.tool === 'barman') return input.command === 'check' ? barmanCommand(ctx, input, true) : planned;
    if (usesPgbackrest(ctx) && input.command !== 'visible') return pgbackrestAction.apply(ctx, { command: input.command }, planned);
    return planned;
  },
};

export default walArchiveAction;
