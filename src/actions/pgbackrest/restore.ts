/**
 * restore: destructive, so guarded.
 *
 * - Never over a running cluster (read live from postmaster.pid, not only from the facts): no
 *   option lifts this one.
 * - Never over the inventory's primary, unless `allow_primary: true`. Two legitimate cases need it:
 *   rebuilding a fenced old primary after a promotion, and restoring a primary that is lost. Both
 *   happen with the cluster stopped, which the first guard still demands.
 * - Only into a missing or empty PGDATA, unless `delta` (or `force`) says overwriting is intended.
 *
 * Under --check a cluster that is still running or a PGDATA that is not empty only produce a note:
 * an earlier step of the same playbook (postgres: stopped) may change that before the restore runs.
 * The inventory-level guard refuses in plan too.
 *
 * - Never into another inventory host's PGDATA, and never over another cluster (another system
 *   identifier) unless `replace: true`: see identity-guard.ts. Both hold under --check.
 *
 * The restore always targets the host's PGDATA (--pg1-path), the directory the guards looked at,
 * whatever pg1-path the host's pgbackrest.conf names.
 */
import { posix } from 'node:path';
import { PgplayError } from '../../core/errors.js';
import { restoredSet, stanzaExists, type BackupEntry, type StanzaInfo } from '../../postgres/pgbackrest-info.js';
import { guardDestruction, type ClusterReference } from '../identity-guard.js';
import type { ActionContext } from '../types.js';
import { describeBackup, readInfo, type CommandHandler } from './common.js';
import { optionArgs, recoveryOptionArgs, TARGETED_TYPES, type PgbackrestInput } from './input.js';
import type { PgbackrestRunner } from './runner.js';

export interface TargetState {
  contents: 'missing' | 'empty' | 'nonempty' | 'notdir' | 'unreadable';
  /** PG_VERSION or backup.manifest is there: pgBackRest accepts the directory for delta/force. */
  looksLikePgdata: boolean;
  /** A live postmaster's pid from PGDATA/postmaster.pid. */
  runningPid?: number;
}

/** One round trip, as the OS user that owns PGDATA: is a postmaster alive, and is the directory empty? */
const PROBE_SCRIPT = `d=$1
if [ -f "$d/postmaster.pid" ]; then
  pid=$(head -n 1 "$d/postmaster.pid" 2>/dev/null)
  case "$pid" in ''|*[!0-9]*) ;; *) kill -0 "$pid" 2>/dev/null && echo "running=$pid" ;; esac
fi
if [ ! -e "$d" ]; then echo contents=missing
elif [ ! -d "$d" ]; then echo contents=notdir
elif [ ! -r "$d" ] || [ ! -x "$d" ]; then echo contents=unreadable
elif [ -z "$(ls -A -- "$d")" ]; then echo contents=empty
else echo contents=nonempty
fi
if [ -f "$d/PG_VERSION" ] || [ -f "$d/backup.manifest" ]; then echo pgdata=1; fi`;

export async function probeTarget(ctx: ActionContext, pgdata: string): Promise<TargetState> {
  const r = await ctx.transport.exec(['/bin/sh', '-c', PROBE_SCRIPT, 'pgplay-restore-probe', pgdata], {
    become: ctx.host.postgres.osUser,
    cwd: '/',
    signal: ctx.signal,
    env: { LC_ALL: 'C' },
  });
  const contents = /^contents=(\w+)$/m.exec(r.stdout)?.[1] as TargetState['contents'] | undefined;
  if (r.exitCode !== 0 || !contents) {
    throw new PgplayError({ code: 'STEP_FAILED', message: `cannot inspect ${pgdata}: ${r.stderr.trim() || `exit code ${r.exitCode}`}` });
  }
  const pid = /^running=(\d+)$/m.exec(r.stdout)?.[1];
  const looksLikePgdata = /^pgdata=1$/m.test(r.stdout);
  return pid ? { contents, looksLikePgdata, runningPid: Number(pid) } : { contents, looksLikePgdata };
}

function guard(message: string, hint: string): PgplayError {
  return new PgplayError({ code: 'GUARD', message, hint });
}

/**
 * Applies the guards; returns the notes that only hold under --check (see the file comment), and whether
 * the identity guard asked the repository for the cluster's identity (`stanzaAsked`: no database host told it).
 */
export async function restoreGuards(
  ctx: ActionContext,
  input: PgbackrestInput,
  pgdata: string,
  repository?: RepositoryRead,
): Promise<{ notes: string[]; state: TargetState; stanzaAsked: boolean }> {
  const host = ctx.host;
  if (host.role === 'primary' && !input.allow_primary) {
    throw guard(
      `refusing to restore over ${host.name}: it is the inventory's primary, and a restore replaces its PGDATA ${pgdata}`,
      'to rebuild a fenced old primary after a promotion, or to restore a lost primary, stop it and set allow_primary: true',
    );
  }
  // The target's state is read beside the identity (reads both; ~15 ms of every restore's check), and
  // judged only once the identity guard has passed.
  const probed = probeTarget(ctx, pgdata);
  probed.catch(() => undefined);
  let stanzaAsked = false;
  // Whose directory it is and which cluster it holds: refused in plan too, and by no flag but replace.
  const identity = await guardDestruction(ctx, {
    verb: 'restore into',
    path: pgdata,
    cluster: true,
    replace: input.replace === true,
    replaceSysid: input.replace_sysid || undefined,
    // No database host to ask: the stanza's own system identifier is the cluster the backups are of.
    fallbackReference: repository
      ? () => {
          stanzaAsked = true;
          return stanzaReference(repository);
        }
      : undefined,
  });
  const state = await probed;
  const notes: string[] = identity.replacing ? [`replaces another cluster, ${identity.replacing.replace(/^a cluster with /, '')}`] : [];
  const facts = ctx.facts;
  const running = state.runningPid !== undefined || (ctx.checkMode && facts.running);
  if (running) {
    const pid = state.runningPid ?? facts.pid;
    const asPrimary = facts.running && facts.in_recovery === false;
    const what = `PostgreSQL is running in ${pgdata}${pid ? ` (pid ${pid})` : ''}${asPrimary ? ' as a primary (not in recovery)' : ''}`;
    if (ctx.checkMode) notes.push(`${what}: it must be stopped before the restore runs`);
    else throw guard(`refusing to restore over ${host.name}: ${what}; never restore over a running cluster`, 'stop it first (postgres: {state: stopped})');
  }
  if (state.contents === 'notdir' || state.contents === 'unreadable') {
    throw guard(`refusing to restore over ${host.name}: ${pgdata} ${state.contents === 'notdir' ? 'is not a directory' : `is not readable by ${host.postgres.osUser}`}`, 'PGDATA must be a directory owned by the PostgreSQL OS user');
  }
  if (state.contents === 'nonempty' && !input.delta && !input.force) {
    const what = `${pgdata} is not empty`;
    if (ctx.checkMode) notes.push(`${what}: delta: true is needed unless an earlier step empties it`);
    else throw guard(`refusing to restore over ${host.name}: ${what}`, 'set delta: true to restore over it (only files that differ are copied), or empty it first');
  }
  if (state.contents === 'nonempty' && (input.delta || input.force) && !state.looksLikePgdata) {
    // pgBackRest silently drops delta/force for such a directory and then refuses it (error 40).
    const what = `${pgdata} is not empty and holds no PG_VERSION, so pgBackRest would not restore over it even with ${input.delta ? 'delta' : 'force'}`;
    if (ctx.checkMode) notes.push(what);
    else throw guard(`refusing to restore over ${host.name}: ${what}`, 'empty the directory (or remove it) first');
  }
  return { notes, state, stanzaAsked };
}

/** The repository's info, read at most once however many times it is asked for (see repositoryRead). */
export type RepositoryRead = () => Promise<StanzaInfo>;

/**
 * One `pgbackrest info` for a restore's check: the identity guard asks for the stanza's system
 * identifier (when no database host tells it) and the check for the backups, moments apart in the same
 * step; both get the same read.
 */
export function repositoryRead(runner: PgbackrestRunner): RepositoryRead {
  let read: Promise<StanzaInfo> | undefined;
  return () => (read ??= readInfo(runner));
}

async function stanzaReference(repository: RepositoryRead): Promise<ClusterReference | undefined> {
  try {
    const s = await repository();
    const sysid = s.db.at(-1)?.system_id;
    return sysid ? { systemIdentifier: sysid, from: `stanza ${s.name} in the repository` } : undefined;
  } catch {
    return undefined;
  }
}

/** restore's arguments; `major` is the host's PostgreSQL major (pgBackRest has --archive-mode only from 12). */
export function restoreArgs(input: PgbackrestInput, pgdata: string, major = 12): string[] {
  const args = [`--pg1-path=${pgdata}`];
  if (input.type && input.type !== 'default') args.push(`--type=${input.type}`);
  if (input.target !== undefined) args.push(`--target=${input.target}`);
  if (input.target_action) args.push(`--target-action=${input.target_action}`);
  // false is the default, and pgBackRest 2.45 refuses --no-target-exclusive ("cannot be negated").
  if (input.target_exclusive === true) args.push('--target-exclusive');
  if (input.target_timeline !== undefined && String(input.target_timeline) !== '') args.push(`--target-timeline=${input.target_timeline}`);
  if (input.set) args.push(`--set=${input.set}`);
  if (input.delta) args.push('--delta');
  if (input.force) args.push('--force');
  if (input.archive_mode && major >= 12) args.push(`--archive-mode=${input.archive_mode}`);
  if (input.process_max !== undefined) args.push(`--process-max=${input.process_max}`);
  args.push(...recoveryOptionArgs(input.recovery_options), ...optionArgs(input.options));
  return args;
}

/**
 * postgresql.auto.conf with archive_mode off as its last line, which wins over every earlier one (an
 * ALTER SYSTEM of the primary's included): what pgBackRest's --archive-mode=off writes from 12 on.
 */
export function withArchivingOff(autoConf: string): string {
  const base = autoConf === '' || autoConf.endsWith('\n') ? autoConf : `${autoConf}\n`;
  return `${base}# Added by pgplay's restore (archive_mode: off): this copy must never archive into the repository.\narchive_mode = 'off'\n`;
}

/** 11 and older: pgBackRest cannot turn the copy's archiving off, so pgplay writes the line itself. */
async function turnArchivingOff(ctx: ActionContext, pgdata: string): Promise<void> {
  const path = posix.join(pgdata, 'postgresql.auto.conf');
  const become = ctx.host.postgres.osUser;
  const text = (await ctx.transport.readFile(path, { become }))?.toString('utf8') ?? '';
  await ctx.transport.writeFile(path, withArchivingOff(text), { become, mode: 0o600 });
}

function describeTarget(input: PgbackrestInput): string {
  const type = input.type ?? 'default';
  const parts = [`type ${type}`];
  if (input.target !== undefined) parts.push(`target ${JSON.stringify(input.target)}`);
  if (input.target_action) parts.push(`then ${input.target_action}`);
  return parts.join(', ');
}

/** The set a restore would use, as far as info can tell before pgBackRest chooses. */
function plannedSet(input: PgbackrestInput, backups: BackupEntry[], stanza: string): string {
  if (input.set) {
    if (!backups.some((b) => b.label === input.set)) {
      const have = backups.map((b) => b.label);
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `backup set ${input.set} does not exist in stanza ${stanza}`,
        expected: have.length ? `one of ${have.join(', ')}` : 'a backup: the stanza has none',
      });
    }
    return input.set;
  }
  // For time and lsn targets pgBackRest picks the newest backup that ends before the target.
  if (input.type === 'time' || input.type === 'lsn') return 'chosen by pgBackRest for the target';
  return `latest (${backups[backups.length - 1]!.label})`;
}

export function targetPgdata(ctx: ActionContext): string {
  const pgdata = ctx.host.pgdata;
  if (!pgdata) {
    throw new PgplayError({ code: 'SEMANTIC', message: `host ${ctx.host.name} has no pgdata to restore into`, expected: 'pgdata on the host in the inventory' });
  }
  return pgdata;
}

/**
 * checkReads key: what a restore's check found and guarded (the target's state) and the repository's
 * info (read, or still being read beside the restore: see check), for apply of the same attempt; the
 * engine empties checkReads when a human was asked in between.
 */
const RESTORE_GUARDED = 'pgbackrest.restore.guarded';
interface Guarded {
  state: TargetState;
  info: Promise<StanzaInfo>;
}

/** Why the repository holds nothing to restore (no stanza, or no backup in it), or undefined. */
function emptyRepository(s: StanzaInfo): string | undefined {
  if (!stanzaExists(s)) return `stanza ${s.name} does not exist (${s.status.message})`;
  return s.backups.length === 0 ? `stanza ${s.name} has no backups` : undefined;
}

/** What the repository's info says against the restore (no stanza, no backup, no such set), or undefined. */
function nothingToRestore(s: StanzaInfo, input: PgbackrestInput): PgplayError | undefined {
  const empty = emptyRepository(s);
  if (empty) return new PgplayError({ code: 'STEP_FAILED', message: `nothing to restore: ${empty}`, hint: 'take a backup first (command: backup)' });
  try {
    plannedSet(input, s.backups, s.name);
    return undefined;
  } catch (e) {
    return e as PgplayError;
  }
}

export const restore: CommandHandler = {
  async check(ctx, input, runner) {
    const pgdata = targetPgdata(ctx);
    const repository = repositoryRead(runner);
    // The repository's info is read beside the guards' reads of the target (a read changes nothing).
    repository().catch(() => undefined);
    const { notes, state, stanzaAsked } = await restoreGuards(ctx, input, pgdata, repository);
    const how = input.delta ? ' with delta' : input.force ? ' with force' : '';
    const noted = notes.length ? `; ${notes.join('; ')}` : '';
    if (!ctx.checkMode && !stanzaAsked && ctx.checkReads && ctx.assumeYes) {
      // The guards took nothing from the repository (a database host told the cluster's identity, or the
      // target holds no cluster) and apply follows at once (--yes: no human is asked, who should hear of
      // an empty repository before being asked): the restore does not wait for the info (~35-60 ms of
      // every standby build, rebuild and drill on the lab), which apply takes once the restore has ended,
      // to describe the set or to say why there was nothing to restore. pgBackRest chooses the backup set
      // before it changes anything in PGDATA, and fails there when there is none (or no such set).
      ctx.checkReads.set(RESTORE_GUARDED, { state, info: repository() } satisfies Guarded);
      return { changed: true, msg: `would restore into ${pgdata}${how} (${describeTarget(input)})${noted}` };
    }
    const s = await repository();
    if (!ctx.checkMode) ctx.checkReads?.set(RESTORE_GUARDED, { state, info: repository() } satisfies Guarded);
    const empty = emptyRepository(s);
    if (empty) {
      if (!ctx.checkMode) throw nothingToRestore(s, input)!;
      notes.push(`${empty} yet`);
      return { changed: true, msg: `would restore into ${pgdata} (${describeTarget(input)}); ${notes.join('; ')}` };
    }
    const set = plannedSet(input, s.backups, s.name);
    return {
      changed: true,
      msg: `would restore backup set ${set} into ${pgdata}${how} (${describeTarget(input)})${noted}`,
    };
  },

  async apply(ctx, input, runner) {
    const pgdata = targetPgdata(ctx);
    // The guards passed in check moments ago, in this attempt, with no human asked since: act on that
    // read (one probe per fact per step); else (a confirmation, a direct call) they run again here.
    const guarded = ctx.checkReads?.get(RESTORE_GUARDED) as Guarded | undefined;
    const { state } = guarded ?? (await restoreGuards(ctx, input, pgdata, repositoryRead(runner)));
    const major = ctx.host.postgres.version;
    let r: Awaited<ReturnType<PgbackrestRunner['run']>>;
    try {
      r = await runner.run('restore', restoreArgs(input, pgdata, major));
    } catch (e) {
      // Where check did not wait for the info: it says why pgBackRest found nothing to restore, as check would have.
      const s = await guarded?.info.catch(() => undefined);
      throw (s && nothingToRestore(s, input)) ?? e;
    }
    if (input.archive_mode === 'off' && major < 12) await turnArchivingOff(ctx, pgdata);
    const set = restoredSet(r.log);
    // A restore adds no backup to the repository: the set it restored is described by check's info. Read
    // again where that did not answer or lacks the set; where that fails too the restore is done all the
    // same, and pgBackRest's own log names the set.
    const checked = await guarded?.info.catch(() => undefined);
    const known = set && checked?.backups.some((b) => b.label === set.label) ? checked : undefined;
    const s =
      known ??
      (await readInfo(runner).catch((e: Error) => {
        ctx.log(`pgbackrest info after the restore: ${e.message}`);
        return undefined;
      }));
    const entry = set ? s?.backups.find((b) => b.label === set.label) : undefined;
    const type = input.type ?? 'default';
    return {
      changed: true,
      msg: `restored ${entry ? describeBackup(entry) : `backup set ${set?.label ?? '(unknown)'}`} into ${pgdata} (${describeTarget(input)})`,
      data: {
        set: set?.label ?? null,
        backup_type: entry?.type ?? null,
        backup: entry ?? null,
        recovery_start: set?.recoveryStart ?? null,
        type,
        target: input.target ?? null,
        targeted: TARGETED_TYPES.includes(type) || type === 'immediate',
        target_action: input.target_action ?? null,
        target_timeline: input.target_timeline ?? null,
        delta: input.delta === true,
        pgdata,
        pgdata_before: state.contents,
        archive_mode: input.archive_mode ?? null,
        argv: r.argv,
      },
    };
  },
};
