/** backup (always a change) and expire (a change when retention removes something). */
import { PgplayError } from '../../core/errors.js';
import { backupTypeChange, newBackupLabel, parseExpireLog, stanzaExists, type ExpireReport } from '../../postgres/pgbackrest-info.js';
import { describeBackup, listing, readInfo, type CommandHandler } from './common.js';
import { optionArgs, type PgbackrestInput } from './input.js';
import { processMax } from './repository.js';
import type { PgbackrestRunner } from './runner.js';

/** pgBackRest's default when --type is not given (a `type=` in pgbackrest.conf would override it). */
const DEFAULT_BACKUP_TYPE = 'incr';

export const backup: CommandHandler = {
  async check(ctx, input, runner) {
    const requested = input.type ?? DEFAULT_BACKUP_TYPE;
    // A real run takes the backup whatever info says (pgBackRest itself takes a full one when there is
    // none to build on, and apply reports that from its log), so only a plan reads info to say what
    // would happen; a missing stanza is named by apply if the backup fails.
    if (!ctx.checkMode) return { changed: true, msg: `would take a ${requested} backup` };
    const s = await readInfo(runner);
    if (!stanzaExists(s)) {
      // Under --check an earlier stanza-create step has not run yet.
      return { changed: true, msg: `would take a full backup (stanza ${s.name} is not created yet: ${s.status.message})` };
    }
    const hasFull = s.backups.some((b) => b.type === 'full');
    if (requested !== 'full' && !hasFull) {
      return { changed: true, msg: `would take a full backup (${requested} requested, but no prior full backup exists)` };
    }
    return { changed: true, msg: `would take a ${requested} backup` };
  },

  async apply(_ctx, input, runner) {
    const args = [
      ...(input.type ? [`--type=${input.type}`] : []),
      ...(input.start_fast !== undefined ? [input.start_fast ? '--start-fast' : '--no-start-fast'] : []),
      ...(input.delta ? ['--delta'] : []),
      ...processMax(input),
      ...optionArgs(input.options),
    ];
    const r = await runner.run('backup', args).catch(async (e: unknown) => {
      throw (await missingStanza(runner)) ?? e;
    });
    const label = newBackupLabel(r.log);
    const change = backupTypeChange(r.log);
    const s = await readInfo(runner);
    const entry = label ? s.backups.find((b) => b.label === label) : s.backups[s.backups.length - 1];
    if (!entry) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `pgbackrest backup succeeded but info does not list ${label ? `backup ${label}` : 'any backup'} for stanza ${s.name}`,
      });
    }
    // pgBackRest expires by retention right after a backup.
    const expired = parseExpireLog(r.log.filter((l) => !l.dryRun));
    const requested = input.type ?? DEFAULT_BACKUP_TYPE;
    let msg = `took a ${describeBackup(entry)}`;
    if (change) msg += `; ${change.from} requested, pgBackRest took a ${change.to} backup: ${change.reason}`;
    if (expired.removedBackups.length) msg += `; retention expired ${listing(expired.removedBackups)}`;
    return {
      changed: true,
      msg,
      data: {
        ...entry,
        requested_type: requested,
        type_changed: change !== undefined,
        ...(change ? { type_change_reason: change.reason } : {}),
        expired: expired.removedBackups,
        backup_count: s.backups.length,
      },
    };
  },
};

/** After a failed backup: the stanza's absence said plainly, when that is the cause (else undefined). */
async function missingStanza(runner: PgbackrestRunner): Promise<PgplayError | undefined> {
  const s = await readInfo(runner).catch(() => undefined);
  if (!s || stanzaExists(s)) return undefined;
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `stanza ${s.name} does not exist in the repository (${s.status.message})`,
    hint: 'run the pgbackrest action with command: stanza-create first',
  });
}

function describeExpire(r: ExpireReport): string {
  const parts: string[] = [];
  if (r.removedBackups.length) parts.push(`backup${r.removedBackups.length === 1 ? '' : 's'} ${listing(r.removedBackups)}`);
  for (const a of r.removedArchive) parts.push(`WAL ${a.start}..${a.stop} (${a.archiveId})`);
  return listing(parts);
}

function expireArgs(input: PgbackrestInput): string[] {
  return [...(input.set ? [`--set=${input.set}`] : []), ...processMax(input), ...optionArgs(input.options)];
}

export const expire: CommandHandler = {
  async check(_ctx, input, runner) {
    const r = await runner.run('expire', ['--dry-run', ...expireArgs(input)]);
    const plan = parseExpireLog(r.log.filter((l) => l.dryRun));
    if (plan.removedBackups.length === 0 && plan.removedArchive.length === 0) {
      return { changed: false, msg: `nothing to expire in stanza ${runner.stanza}`, data: { removed_backups: [], removed_archive: [] } };
    }
    return {
      changed: true,
      msg: `would remove ${describeExpire(plan)}`,
      data: { removed_backups: plan.removedBackups, removed_archive: plan.removedArchive },
    };
  },

  async apply(_ctx, input, runner) {
    const before = await readInfo(runner);
    const r = await runner.run('expire', expireArgs(input));
    const after = await readInfo(runner);
    const left = new Set(after.backups.map((b) => b.label));
    const removed = before.backups.map((b) => b.label).filter((l) => !left.has(l));
    const report = parseExpireLog(r.log.filter((l) => !l.dryRun));
    const minBefore = before.archive[before.archive.length - 1]?.min ?? null;
    const minAfter = after.archive[after.archive.length - 1]?.min ?? null;
    const changed = removed.length > 0 || report.removedArchive.length > 0 || minBefore !== minAfter;
    return {
      changed,
      msg: changed ? `removed ${describeExpire({ removedBackups: removed, removedArchive: report.removedArchive }) || `WAL before ${minAfter}`}` : 'nothing expired',
      data: {
        removed_backups: removed,
        removed_archive: report.removedArchive,
        backups: after.backups.map((b) => b.label),
        archive_min_before: minBefore,
        archive_min: minAfter,
      },
    };
  },
};
