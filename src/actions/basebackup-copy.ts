/**
 * A base backup without pg_basebackup: the low-level backup API on the upstream (pg_backup_start /
 * pg_backup_stop, non-exclusive, in one session held open), its files streamed as a tar archive from
 * the upstream's transport to this host's through pgplay, the backup_label written from what
 * pg_backup_stop returns, and the WAL of the backup copied after it so the copy is self-contained.
 *
 * It needs only tar and the superuser's socket on both ends, so it works where no pg_basebackup at
 * least as new as the upstream is installed (pg_basebackup refuses newer servers), as is the case for
 * the server-only builds of PostgreSQL 16 and 17 that pgplay's tests and lab use.
 */
import type { Client } from 'pg';
import type { Duplex } from 'node:stream';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { versionFacts } from '../postgres/versions.js';
import { commandFailed, requirePgdata, runAsOwner } from '../postgres/owner.js';
import type { ActionContext } from './types.js';

/** What pg_basebackup leaves out too: runtime state, WAL (copied separately), and recovery triggers. */
const EXCLUDES = [
  './postmaster.pid',
  './postmaster.opts',
  './pg_wal',
  './pg_replslot/*',
  './pg_stat_tmp/*',
  './pg_dynshmem/*',
  './pg_notify/*',
  './pg_serial/*',
  './pg_snapshots/*',
  './pg_subtrans/*',
  './backup_label',
  './backup_label.old',
  './tablespace_map',
  './standby.signal',
  './recovery.signal',
  './recovery.conf',
  '*/pgsql_tmp*',
];

const DONE = 'PGPLAY-COPY-OK';
const WAL_FILE = /^[0-9A-F]{24}$/;

export interface CopyResult {
  startLsn: string;
  stopLsn: string;
  walFiles: number;
  /** The timeline the backup started on (backup_label's START TIMELINE). */
  timeline: number;
  /** The upstream server's major. */
  major: number;
}

export async function copyWithBackupApi(
  ctx: ActionContext,
  upstream: Host,
  /** into: a directory on this host other than its PGDATA (a repository's backup being made). */
  opts: { slot?: { name: string; create: boolean }; fast: boolean; into?: string },
): Promise<CopyResult> {
  const pgdata = opts.into ?? requirePgdata(ctx.host);
  const source = requirePgdata(upstream);
  const client = await ctx.connectPostgres({ hostName: upstream.name });
  let started = false;
  try {
    const version = Math.floor(Number((await client.query<{ v: string }>("select current_setting('server_version_num') as v")).rows[0]!.v) / 10000);
    const fn = versionFacts(version);
    const spaces = await client.query("select spcname from pg_tablespace where spcname not in ('pg_default', 'pg_global')");
    if (spaces.rowCount) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `${upstream.name} has tablespaces (${spaces.rows.map((r) => r.spcname).join(', ')}); method copy copies only PGDATA`,
        hint: 'use method: pg_basebackup with a pg_basebackup at least as new as the upstream',
      });
    }
    if (opts.slot?.create) {
      // Created before the backup starts and reserving WAL at once: nothing the copy needs can go.
      await client.query('select pg_create_physical_replication_slot($1, true)', [opts.slot.name]);
    }
    const label = `pgplay ${ctx.host.name}`;
    const startSql =
      fn.backupStartFunction === 'pg_backup_start'
        ? 'select pg_backup_start($1, $2)::text as lsn'
        : 'select pg_start_backup($1, $2, false)::text as lsn';
    const startLsn = (await client.query<{ lsn: string }>(startSql, [label, opts.fast])).rows[0]!.lsn;
    started = true;
    ctx.log(`backup started on ${upstream.name} at ${startLsn}; copying ${source}`);

    await pipeTar(ctx, upstream, ['tar', '-C', source, '-cf', '-', '--warning=no-file-changed', '--warning=no-file-removed', ...EXCLUDES.map((e) => `--exclude=${e}`), '.'], [
      'sh',
      '-c',
      `mkdir -p -m 0700 -- "$1" && cd -- "$1" && tar -xf - && mkdir -p -m 0700 pg_wal pg_wal/archive_status && echo ${DONE}`,
      'pgplay-copy',
      pgdata,
    ]);

    const stopSql =
      fn.backupStopFunction === 'pg_backup_stop'
        ? 'select lsn::text as lsn, labelfile, spcmapfile from pg_backup_stop(false)'
        : 'select lsn::text as lsn, labelfile, spcmapfile from pg_stop_backup(false, false)';
    const stop = (await client.query<{ lsn: string; labelfile: string; spcmapfile: string | null }>(stopSql)).rows[0]!;
    started = false;
    const owner = ctx.host.postgres.osUser;
    await ctx.transport.writeFile(`${pgdata}/backup_label`, stop.labelfile, { mode: 0o600, owner, become: owner });

    const walFiles = await copyWal(ctx, upstream, source, pgdata, stop.labelfile);
    const timeline = Number(/^START TIMELINE: (\d+)$/m.exec(stop.labelfile)?.[1] ?? NaN);
    return { startLsn, stopLsn: stop.lsn, walFiles, timeline, major: version };
  } finally {
    if (started) await abortBackup(client, upstream);
    await client.end().catch(() => undefined);
  }
}

/** The WAL from the backup's start segment on (and the timeline history files), after pg_backup_stop. */
async function copyWal(ctx: ActionContext, upstream: Host, source: string, pgdata: string, labelfile: string): Promise<number> {
  const m = /^START WAL LOCATION: .* \(file ([0-9A-F]{24})\)$/m.exec(labelfile);
  if (!m) throw new PgplayError({ code: 'STEP_FAILED', message: `cannot read the start WAL file from the backup label of ${upstream.name}` });
  const startSegment = m[1]!.slice(8);
  const list = await runAsOwner(ctx, ['ls', '-1', '--', `${source}/pg_wal`], { host: upstream, env: { LC_ALL: 'C' }, timeoutMs: 60_000 });
  if (list.exitCode !== 0) throw commandFailed(`cannot list ${source}/pg_wal on ${upstream.name}`, list);
  const names = list.stdout
    .split('\n')
    .filter((n) => /^[0-9A-F]{8}\.history$/.test(n) || (WAL_FILE.test(n) && n.slice(8) >= startSegment));
  if (!names.some((n) => WAL_FILE.test(n))) {
    throw new PgplayError({ code: 'STEP_FAILED', message: `the WAL of the backup (from ${m[1]}) is no longer in ${source}/pg_wal on ${upstream.name}` });
  }
  await pipeTar(ctx, upstream, ['tar', '-C', `${source}/pg_wal`, '-cf', '-', '--', ...names], [
    'sh',
    '-c',
    `cd -- "$1" && tar -xf - && echo ${DONE}`,
    'pgplay-copy-wal',
    `${pgdata}/pg_wal`,
  ]);
  return names.length;
}

/**
 * tar on the upstream piped into tar on this host, both as the cluster's OS user. The receiving side
 * prints a marker only when its whole archive extracted; a truncated stream (the sender failed) or a
 * failed extraction leaves it out, and that is the one test of success.
 */
async function pipeTar(ctx: ActionContext, upstream: Host, sendArgv: string[], receiveArgv: string[]): Promise<void> {
  const from = ctx.transportFor(upstream.name);
  let send: Duplex | undefined;
  let receive: Duplex | undefined;
  try {
    send = await from.openStream(sendArgv, { become: upstream.postgres.osUser });
    receive = await ctx.transport.openStream(receiveArgv, { become: ctx.host.postgres.osUser });
    const { output, streamError } = await new Promise<{ output: string; streamError?: Error }>((resolve, reject) => {
      let out = '';
      let streamError: Error | undefined;
      const onAbort = () => reject(new PgplayError({ code: 'INTERRUPTED', message: 'the copy was interrupted' }));
      if (ctx.signal.aborted) return onAbort();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      receive!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      // The receiver's end (or its stream closing on an error) is when the outcome is known. A stream
      // error on the way, such as the sender still writing tar's padding after the receiver has read
      // the end of the archive, only explains a failure the marker already shows.
      const finished = () => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve({ output: out, streamError });
      };
      receive!.once('end', finished);
      receive!.once('close', finished);
      receive!.on('error', (e: Error) => (streamError ??= e));
      send!.on('error', (e: Error) => (streamError ??= e));
      send!.pipe(receive!);
    });
    if (!output.includes(DONE)) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `copying from ${upstream.name} failed: the archive did not extract completely on ${ctx.host.name}${streamError ? ` (${streamError.message})` : ''}`,
        hint: `check that tar is installed on both hosts and that ${ctx.host.postgres.osUser} can write to ${ctx.host.pgdata}`,
      });
    }
  } finally {
    send?.destroy();
    receive?.destroy();
  }
}

/** A backup left started would hold its session's state; end it so the upstream is as it was. */
async function abortBackup(client: Client, upstream: Host): Promise<void> {
  const version = upstream.postgres.version;
  const sql = version >= 15 ? 'select pg_backup_stop(false)' : 'select pg_stop_backup(false, false)';
  await client.query(sql).catch(() => undefined);
}
