/**
 * The pitr_target action: before anything is restored, decide which backup set can reach a recovery
 * target and prove that the WAL archive holds what recovery from it needs (src/postgres/backup-set.ts).
 * Read-only, so it runs under plan too; a target that cannot be reached is refused (exit 3) there and
 * in a real run alike, naming the missing segment or the backup whose consistency point is too late.
 *
 * It reads the repository on the backup host (backup.repoHost, else the primary, where `pgbackrest
 * info` works; with backup.tool basebackup a listing of backup.repoPath, postgres/base-repository.ts) and places name and xid targets on the primary: a restore point by the line
 * PostgreSQL logs when it creates one ("restore point "x" created at 0/5000090"), a transaction by
 * its commit timestamp (track_commit_timestamp). Registers the set, why it was chosen, any warning,
 * and the WAL range checked: the drill report shows them.
 */
import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { archivedSegments, checkWal, chooseBackupSet, describeTarget, TargetRefusal, timelineLimit, type ArchivedSegment, type SetChoice, type TargetPosition } from '../postgres/backup-set.js';
import { readBaseRepository, readBaseSystemId, repositoryPaths } from '../postgres/base-repository.js';
import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, parseLsn, parseTargetTime, TARGET_TYPES, targetValueProblem } from '../postgres/recovery-target.js';
import { stanzaExists, type BackupEntry, type StanzaInfo } from '../postgres/pgbackrest-info.js';
import { readInfo } from './pgbackrest/common.js';
import { resolveInput } from './pgbackrest/input.js';
import { PgbackrestRunner } from './pgbackrest/runner.js';
import type { Action, ActionContext, Outcome } from './types.js';
import { barmanBackupSystemId, readBarmanRepository } from '../barman/archive.js';
import { barmanServer, BarmanRunner } from '../barman/runner.js';

export interface PitrTargetInput {
  type: (typeof TARGET_TYPES)[number];
  value?: string;
  set?: string;
  target_timeline?: string | number;
  stanza?: string;
}

function guard(message: string, hint: string): PgplayError {
  return new PgplayError({ code: 'GUARD', message, hint });
}

function primaryOf(ctx: ActionContext): Host | undefined {
  return Object.values(ctx.hosts).find((h) => h.role === 'primary');
}

/** The host where the repository answers: backup.repoHost, else the primary. */
function repositoryHost(ctx: ActionContext): Host {
  const name = ctx.inventory.backup?.repoHost ?? primaryOf(ctx)?.name;
  const host = name ? ctx.hosts[name] : undefined;
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: 'no host holds the backup repository', expected: 'backup.repoHost or a primary in the inventory' });
  return host;
}

/** The action context as seen from another host (its transport, facts and variables). */
async function contextOn(ctx: ActionContext, host: Host): Promise<ActionContext> {
  return { ...ctx, host, transport: ctx.transportFor(host.name), facts: await ctx.factsOf(host.name) };
}

async function withPrimary<T>(ctx: ActionContext, primary: Host, query: (client: import('pg').Client) => Promise<T>): Promise<T | undefined> {
  if (!(await ctx.factsOf(primary.name)).running) return undefined;
  let client: import('pg').Client | undefined;
  try {
    client = await ctx.connectPostgres({ hostName: primary.name });
    return await query(client);
  } catch (e) {
    ctx.log(`${primary.name}: ${(e as Error).message}`);
    return undefined;
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/** The commit time of a transaction on the primary (needs track_commit_timestamp). */
async function commitTime(ctx: ActionContext, primary: Host, xid: string): Promise<TargetPosition | undefined> {
  return withPrimary(ctx, primary, async (client) => {
    const on = await client.query<{ on: boolean }>("SELECT current_setting('track_commit_timestamp') = 'on' AS on");
    if (!on.rows[0]?.on) return undefined;
    const cast = primary.postgres.version >= 13 ? '$1::xid8::xid' : '$1::text::xid';
    const r = await client.query<{ at: string | null; ms: string | null }>(
      `SELECT pg_xact_commit_timestamp(${cast})::text AS at, (extract(epoch FROM pg_xact_commit_timestamp(${cast})) * 1000)::bigint::text AS ms`,
      [xid],
    );
    const row = r.rows[0];
    if (!row?.at || !row.ms) return undefined;
    return { time: Number(row.ms), source: `transaction ${xid} committed at ${row.at} (pg_xact_commit_timestamp on ${primary.name})` };
  });
}

const LOG_SCRIPT = `name=$1; shift
for f in "$@"; do [ -f "$f" ] && [ -r "$f" ] && grep -F -h -- "restore point \\"$name\\" created at" "$f"; done
exit 0`;

/** The primary's server log files: its postmaster's stderr file, the layout's log file, the logging collector's files. */
async function logFiles(ctx: ActionContext, primary: Host): Promise<string[]> {
  const files = new Set<string>();
  if (primary.postgres.logFile) files.add(primary.postgres.logFile);
  const pid = (await ctx.factsOf(primary.name)).pid;
  const t = ctx.transportFor(primary.name);
  if (pid !== undefined) {
    const r = await t.exec(['readlink', `/proc/${pid}/fd/2`], { become: primary.postgres.osUser, cwd: '/', signal: ctx.signal });
    const f = r.stdout.trim();
    if (r.exitCode === 0 && f.startsWith('/')) files.add(f);
  }
  const collector = await withPrimary(ctx, primary, async (client) => {
    const r = await client.query<{ f: string | null; dir: string }>("SELECT pg_current_logfile() AS f, current_setting('data_directory') AS dir");
    return r.rows[0];
  });
  if (collector?.f) {
    const dir = posix.dirname(posix.isAbsolute(collector.f) ? collector.f : posix.join(collector.dir, collector.f));
    const r = await t.exec(['find', dir, '-maxdepth', '1', '-type', 'f'], { become: primary.postgres.osUser, cwd: '/', signal: ctx.signal });
    for (const f of r.stdout.split('\n').map((l) => l.trim())) if (f) files.add(f);
  }
  return [...files];
}

/** Where a restore point lies: the LSN PostgreSQL logged when it was created (the last one of that name). */
async function restorePoint(ctx: ActionContext, primary: Host, name: string): Promise<{ position?: TargetPosition; note?: string }> {
  const files = await logFiles(ctx, primary);
  if (files.length === 0) return { note: `no server log of ${primary.name} found` };
  const r = await ctx.transportFor(primary.name).exec(['/bin/sh', '-c', LOG_SCRIPT, 'pgplay-restore-point', name, ...files], {
    become: primary.postgres.osUser,
    cwd: '/',
    signal: ctx.signal,
  });
  const marker = `restore point "${name}" created at `;
  const lsns = r.stdout
    .split('\n')
    .map((l) => {
      const i = l.indexOf(marker);
      return i < 0 ? undefined : parseLsn(l.slice(i + marker.length).split(/\s/)[0] ?? '');
    })
    .filter((x): x is bigint => x !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const last = lsns[lsns.length - 1];
  if (last === undefined) return { note: `no restore point "${name}" in ${files.join(', ')}` };
  const also = lsns.length > 1 ? `; created ${lsns.length} times (${lsns.map(formatLsn).join(', ')}), recovery stops at the first one after the backup's start` : '';
  return { position: { lsn: last, source: `restore point "${name}" created at ${formatLsn(last)} (server log of ${primary.name})${also}` } };
}

async function targetPosition(ctx: ActionContext, input: PitrTargetInput): Promise<TargetPosition | undefined> {
  const value = (input.value ?? '').trim();
  switch (input.type) {
    case 'time':
      return { time: parseTargetTime(value)!, source: `the target time ${value}` };
    case 'lsn':
      return { lsn: parseLsn(value)!, source: `the target LSN ${value}` };
    case 'xid': {
      const primary = primaryOf(ctx);
      return primary ? commitTime(ctx, primary, value) : undefined;
    }
    case 'name': {
      const primary = primaryOf(ctx);
      if (!primary) return undefined;
      const found = await restorePoint(ctx, primary, value);
      if (found.note) ctx.log(found.note);
      return found.position;
    }
    default:
      return undefined;
  }
}

async function segmentSize(ctx: ActionContext): Promise<number> {
  const primary = primaryOf(ctx);
  const size = primary
    ? await withPrimary(ctx, primary, async (client) => (await client.query<{ b: string }>("SELECT setting AS b FROM pg_settings WHERE name = 'wal_segment_size'")).rows[0]?.b)
    : undefined;
  // Before 11 the setting counts 8kB blocks; pgplay supports 11 and later, where it is in bytes.
  return size && Number(size) > 0 ? Number(size) : DEFAULT_WAL_SEGMENT_SIZE;
}

function archiveId(s: StanzaInfo, choice: SetChoice): string {
  const db = s.db.find((d) => d.id === choice.backup.database_id) ?? s.db[s.db.length - 1];
  if (!db) throw new PgplayError({ code: 'STEP_FAILED', message: `pgbackrest info lists no database for stanza ${s.name}` });
  return `${db.version}-${db.id}`;
}

/** What the repository of the inventory's backup engine holds: its backups, and for a chosen one the archive its recovery reads. */
interface RepositoryView {
  backups: BackupEntry[];
  /** Set when there is nothing to recover from (%TARGET% stands for the target's description). */
  refusal?: string;
  hint: string;
  archive(choice: SetChoice): Promise<{ id: string; where: string; segments: ArchivedSegment[] }>;
  /** The system identifier of the cluster the chosen backup was taken of (a restore checks the target host against it). */
  systemId(choice: SetChoice): Promise<string | null>;
}

async function pgbackrestView(ctx: ActionContext, repo: Host, input: PitrTargetInput): Promise<RepositoryView> {
  const { stanza, config } = resolveInput({ command: 'info', ...(input.stanza ? { stanza: input.stanza } : {}) }, repo, ctx.inventory);
  const runner = new PgbackrestRunner(await contextOn(ctx, repo), stanza, config);
  const s = await readInfo(runner);
  return {
    backups: s.backups,
    ...(stanzaExists(s) ? {} : { refusal: `no backup to recover %TARGET% from: stanza ${s.name} ${s.status.message}` }),
    hint: 'create the stanza and take a backup first (nightly-backup.yml)',
    async archive(choice) {
      const id = archiveId(s, choice);
      const listing = await runner.run('repo-ls', ['--output=json', '--recurse'], { logLevel: 'warn', parameters: [`archive/${s.name}/${id}`] });
      return { id, where: `archive ${id} of stanza ${s.name}`, segments: archivedSegments(listing.stdout) };
    },
    systemId: async (choice) => (s.db.find((d) => d.id === choice.backup.database_id) ?? s.db[s.db.length - 1])?.system_id || null,
  };
}

/** backup.tool basebackup: the base-* directories and the wal/ archive in backup.repoPath (postgres/base-repository.ts). */
async function baseView(ctx: ActionContext, repo: Host, segmentSize: number): Promise<RepositoryView> {
  const repoPath = ctx.inventory.backup!.repoPath!;
  const listing = await readBaseRepository(ctx, repo, repoPath, segmentSize);
  if (listing.unusable.length) ctx.log(`backups without a backup_manifest (PostgreSQL 12 or older) cannot be placed and are not used: ${listing.unusable.join(', ')}`);
  const where = `${repo.name}:${repositoryPaths(repoPath).wal}`;
  return {
    backups: listing.backups,
    ...(listing.backups.length ? {} : { refusal: `no backup to recover %TARGET% from: ${repo.name}:${repoPath} holds no base backup with a backup_manifest` }),
    hint: 'take a backup first (nightly-backup.yml)',
    archive: async () => ({ id: where, where: `the WAL archive ${where}`, segments: listing.segments }),
    systemId: (choice) => readBaseSystemId(ctx, repo, repoPath, choice.backup.label),
  };
}

/** backup.tool barman: the server's finished backups (show-backup) and its wals_directory, read as barman on the repository host. */
async function barmanView(ctx: ActionContext, repo: Host): Promise<RepositoryView> {
  const runner = new BarmanRunner(ctx, repo, barmanServer(ctx.inventory));
  const r = await readBarmanRepository(runner);
  const where = `${repo.name}:${r.walsDir}`;
  return {
    backups: r.backups,
    ...(r.backups.length ? {} : { refusal: `no backup to recover %TARGET% from: Barman's server ${runner.server} on ${repo.name} has no finished backup` }),
    hint: 'take a backup first (nightly-backup.yml)',
    archive: async () => ({ id: where, where: `Barman's WAL archive ${where}`, segments: r.segments }),
    systemId: (choice) => barmanBackupSystemId(runner, choice.backup.label),
  };
}

export const pitrTargetAction: Action<PitrTargetInput> = {
  name: 'pitr_target',
  connects: true,
  // Reads only.
  changes: [],
  summary:
    'Chooses the backup set that can reach a recovery target (from pgbackrest info, or with backup.tool basebackup the backups\' manifests in backup.repoPath; ' +
    'the restore point in the server log, the commit timestamp) ' +
    'and checks that the WAL archive holds every segment recovery needs; refuses (exit 3) a target that cannot be reached. Read-only.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['type'],
    properties: {
      type: { enum: [...TARGET_TYPES], description: 'latest, immediate, or a target of type time, name, xid or lsn (with value).' },
      value: { type: 'string', description: "The time (with its zone offset), restore point name, transaction id or LSN; '' for latest and immediate." },
      set: { type: 'string', description: "A backup set label to use instead of the one pgplay would choose ('' : let pgplay choose)." },
      target_timeline: { type: ['string', 'integer'], description: "The timeline recovery follows (current, latest or a number; '': PostgreSQL's default): which timelines' WAL counts." },
      stanza: { type: 'string', pattern: '^[A-Za-z0-9_.-]*$', description: 'Stanza; default the inventory backup.stanza, else the cluster name.' },
    },
  },
  async check(ctx, input): Promise<Outcome> {
    const value = input.value ?? '';
    const problem = targetValueProblem(input.type, value);
    if (problem) throw new PgplayError({ code: 'SEMANTIC', message: `target ${input.type}: value ${JSON.stringify(value)} ${problem.what}`, expected: problem.expected });
    const timeline = String(input.target_timeline ?? '');
    if (!/^(|current|latest|\d+|0x[0-9A-Fa-f]+)$/.test(timeline)) {
      throw new PgplayError({ code: 'SEMANTIC', message: `target_timeline "${timeline}" is not a timeline`, expected: 'current, latest or a timeline number' });
    }
    const repo = repositoryHost(ctx);
    const tool = ctx.inventory.backup?.tool;
    // The repository (pgbackrest info or Barman on the backup host) and the primary (its segment size, the
    // target's place in its log) are read side by side: neither depends on the other, and each is a
    // command or query of tens of milliseconds. The primary's two reads stay one after the other, on the
    // run's one connection to it. A listing of basebackup's repository needs the segment size first.
    const onPrimary = segmentSize(ctx).then(async (size) => ({ size, position: await targetPosition(ctx, input) }));
    const [view, { size, position }] = await Promise.all([
      tool === 'basebackup' ? onPrimary.then(({ size }) => baseView(ctx, repo, size)) : tool === 'barman' ? barmanView(ctx, repo) : pgbackrestView(ctx, repo, input),
      onPrimary,
    ]);
    if (view.refusal) throw guard(view.refusal.replace('%TARGET%', describeTarget({ type: input.type, value })), view.hint);

    let choice: SetChoice;
    try {
      choice = chooseBackupSet(view.backups, { type: input.type, value, ...(input.set ? { set: input.set } : {}), ...(position ? { position } : {}) });
    } catch (e) {
      if (e instanceof TargetRefusal) throw guard(e.message, e.hint);
      throw e;
    }
    const archive = await view.archive(choice);
    const id = archive.id;
    let wal;
    try {
      wal = checkWal(archive.segments, { backup: choice.backup, type: input.type, ...(position ? { position } : {}), maxTimeline: timelineLimit(String(input.target_timeline ?? ''), repo.postgres.version), segmentSize: size });
    } catch (e) {
      if (e instanceof TargetRefusal) throw guard(e.message, e.hint);
      throw e;
    }
    if (wal.missing.length > 0) {
      const more = wal.missing.length > 1 ? ` (and ${wal.missing.length - 1} more: ${wal.missing.slice(1, 6).join(', ')}${wal.missing.length > 6 ? ', ...' : ''})` : '';
      throw guard(
        `WAL segment ${wal.missing[0]} is missing from the repository (${archive.where})${more}: recovery from backup ${choice.backup.label} ` +
          `to ${describeTarget({ type: input.type, value })} needs every segment from ${wal.from} to ${wal.to} (${wal.until})`,
        `a gap in the archive cannot be replayed across: recover to a target before the gap, or from a backup taken after it; find out why the segment is gone${ctx.inventory.backup?.tool === 'basebackup' ? '' : ' (pgbackrest verify)'}`,
      );
    }
    if (choice.warning) ctx.log(`warning: ${choice.warning}`);
    const pending = wal.pending.length
      ? `; ${wal.pending.length} segment${wal.pending.length === 1 ? '' : 's'} from ${wal.pending[0]} on ${wal.pending.length === 1 ? 'is' : 'are'} not archived yet (the primary's recent WAL: the drill's pgbackrest check archives it)`
      : '';
    const target = describeTarget({ type: input.type, value });
    return {
      changed: false,
      msg: `${target}: backup set ${choice.backup.label}, chosen because ${choice.reason}; WAL ${wal.from}..${wal.to} is in the archive (${wal.checked - wal.pending.length} segments)${pending}${choice.warning ? `; WARNING: ${choice.warning}` : ''}`,
      data: {
        set: choice.backup.label,
        backup_type: choice.backup.type,
        reason: choice.reason,
        warning: choice.warning ?? null,
        target: { type: input.type, value: value || null },
        position: position ? { time: position.time !== undefined ? new Date(position.time).toISOString() : null, lsn: position.lsn !== undefined ? formatLsn(position.lsn) : null, source: position.source } : null,
        wal: { archive_id: id, from: wal.from, to: wal.to, until: wal.until, segments: wal.checked - wal.pending.length, not_archived_yet: wal.pending, newest: wal.newest, segment_size: size },
        repository_host: repo.name,
        system_id: await view.systemId(choice),
      },
    };
  },

  async apply(_ctx, _input, planned) {
    // Read-only: check did the work.
    return planned;
  },
};

export default pitrTargetAction;
