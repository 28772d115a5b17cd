/**
 * Controlling a server with pg_ctl: start, restart, stop, reload and promote, each waiting for the
 * result, run as the cluster's OS user. A start reports the log lines that name a failure.
 */
import { posix } from 'node:path';
import { PgplayError, tailLines } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { ServerContext } from './server-context.js';
import type { HostFacts } from '../model/facts.js';
import { commandFailed, pgBin, runAsOwner } from './owner.js';
import { probeAfterChange } from './probe.js';
import { postmasterSeen, postmasterWatchArgv, type PostmasterWatch } from './postmaster-watch.js';
import { cleanServerEnv, LOG_DIRECTORY_FAILED } from './server-env.js';
import { collectorTail, currentLogFile, defaultLogFile, LOG_TAIL_LINES, logSince, logSize } from './server-log.js';

export type StopMode = 'smart' | 'fast' | 'immediate';

export function waitSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

export interface StartOptions {
  command: 'start' | 'restart';
  waitMs: number;
  /** pg_ctl -l; default: on a restart the running server's own log, else defaultLogFile. */
  logFile?: string;
  mode?: StopMode;
  /** The running server, for a restart (its log file is kept). */
  running?: HostFacts;
  /**
   * Called once the new postmaster is up (done starting, as pg_ctl -w waits for), when that is seen before
   * the start's command returns (with pg_ctl: postmaster-watch.ts); the command's exit is still awaited and
   * stays the verdict on the start.
   */
  onReady?: () => void;
}

/**
 * Runs a pg_ctl command that starts a postmaster, in a clean environment (cleanServerEnv). pg_ctl
 * hands the server's output to the log file (without -l it would keep our pipe open for as long as
 * the server runs); on failure the lines this attempt wrote to it, or to the logging collector's file
 * when the configuration has one, are what name the problem (a bad setting, a port in use, a missing file).
 */
export async function pgCtlStart(ctx: ServerContext, pgdata: string, o: StartOptions): Promise<void> {
  const host = ctx.host;
  const log = o.logFile ?? (o.command === 'restart' ? await currentLogFile(ctx, o.running?.pid) : undefined) ?? defaultLogFile(pgdata);
  // Read before the start makes the log's directory: a log that is not there yet (nor its directory, nor
  // one that can be entered) has no lines of before.
  const before = await logSize(ctx, log).catch(() => 0);
  const argv = [pgBin(host, 'pg_ctl'), o.command, '-D', pgdata, '-l', log, '-w', '-t', waitSeconds(o.waitMs)];
  if (o.command === 'restart') argv.push('-m', o.mode ?? 'fast');
  ctx.log(`pg_ctl ${o.command} (log ${log})`);
  const r = await whileWatchingStart(ctx, pgdata, o, () => runAsOwner(ctx, cleanServerEnv(pgdata, argv, posix.dirname(log)), { env: { LC_MESSAGES: 'C' } }));
  if (r.exitCode === 0) return;
  if (r.exitCode === LOG_DIRECTORY_FAILED) throw logDirectoryFailed(log, r.stderr);

  // Only what this attempt wrote: an older failure further up the file would name the wrong cause.
  const own = tailLines(await logSince(ctx, log, before), LOG_TAIL_LINES);
  const lines = own.length ? own : await collectorTail(ctx, pgdata);
  const pgctl = tailLines(r.stderr || r.stdout, 3).join(' ');
  const timedOut = /did not start in time/i.test(pgctl);
  throw new PgplayError({
    code: 'STEP_FAILED',
    message: timedOut
      ? `PostgreSQL on ${host.name} did not finish starting within ${waitSeconds(o.waitMs)}s; it may still be starting${lines.length ? `. Last log lines:\n${lines.join('\n')}` : ''}`
      : `PostgreSQL did not start on ${host.name}${lines.length ? `:\n${lines.join('\n')}` : `: ${pgctl || `pg_ctl ${o.command} exited with rc ${r.exitCode}`}`}`,
    hint: `the server's startup log is ${log}${own.length ? '' : ' (and its logging collector\'s files, when logging_collector is on)'}`,
    command: { argv, rc: r.exitCode, stderrTail: lines.length ? lines : tailLines(r.stderr || r.stdout, 3) },
  });
}

/** How long a watcher stopped when its command returned may take to end before the step goes on without it. */
const WATCH_END_MS = 3_000;

/**
 * A start's command with the watcher of postmaster-watch.ts beside it (`up`), when the caller has something
 * to do once the server is up (o.onReady). No watcher where it could mislead or never report: a restart whose
 * old postmaster's pid is unknown (a postmaster started moments ago would pass for the new one), a server
 * older than PostgreSQL 10 (no status line).
 */
function whileWatchingStart<T>(ctx: ServerContext, pgdata: string, o: StartOptions, command: () => Promise<T>): Promise<T> {
  const replaced = o.command === 'restart' ? o.running?.pid : 0;
  const major = o.running?.version ?? ctx.host.postgres.version;
  if (!o.onReady || replaced === undefined || major < 10) return command();
  return whileWatching(ctx, { watch: 'up', pgdata, notPid: replaced, waitMs: o.waitMs, onSeen: o.onReady }, command);
}

/**
 * Runs a command of pg_ctl's with the watcher of postmaster-watch.ts beside it; calls w.onSeen if the watcher
 * reports what pg_ctl waits for before it is stopped. The command goes first (it takes the host's idle
 * helper). No watcher where the transport could not stop it (Transport.canStop). The watcher is stopped when
 * the command returns, and has ended (or had WATCH_END_MS to) when this returns.
 */
async function whileWatching<T>(
  ctx: ServerContext,
  w: { watch: PostmasterWatch; pgdata: string; notPid: number; waitMs: number; onSeen: () => void },
  command: () => Promise<T>,
): Promise<T> {
  const become = ctx.host.postgres.osUser;
  if (ctx.signal.aborted || ctx.transport.canStop?.(become) === false) return command();
  const running = command();
  const watch = new AbortController();
  const stop = () => watch.abort();
  ctx.signal.addEventListener('abort', stop, { once: true });
  const watching = ctx.transport
    .exec(postmasterWatchArgv(w.watch, w.pgdata, w.notPid, waitSeconds(w.waitMs)), { become, signal: watch.signal, timeoutMs: w.waitMs + 5_000 })
    .then((r) => {
      const seen = r.exitCode === 0 ? postmasterSeen(w.watch, r.stdout) : undefined;
      if (!seen || watch.signal.aborted) return;
      ctx.log(`${seen}; pg_ctl has yet to notice`);
      w.onSeen();
    })
    // The watch only ever brings what follows forward: whatever becomes of it, the command's outcome stands.
    .catch(() => undefined);
  try {
    return await running;
  } finally {
    stop();
    ctx.signal.removeEventListener('abort', stop);
    // The bound's timer ends with the watcher (sleep's signal), not 3 s later.
    const ended = new AbortController();
    await Promise.race([watching, sleep(WATCH_END_MS, ended.signal)]);
    ended.abort();
  }
}

/** The start's shell could not make the log's directory: mkdir's own words, and mkdir as the command. */
function logDirectoryFailed(log: string, stderr: string): PgplayError {
  const dir = posix.dirname(log);
  const lines = tailLines(stderr, 3);
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `cannot create the directory of the log file ${log}${lines.length ? `: ${lines.join('\n')}` : ''}`,
    command: { argv: ['mkdir', '-p', '--', dir], stderrTail: lines },
  });
}

/** pg_ctl stop -w; onGone: called once the server is seen gone before pg_ctl returns (postmaster-watch.ts), pg_ctl's exit still the verdict. */
export async function pgCtlStop(ctx: ServerContext, pgdata: string, mode: StopMode, waitMs: number, onGone?: () => void): Promise<void> {
  const stop = () => runAsOwner(ctx, [pgBin(ctx.host, 'pg_ctl'), 'stop', '-D', pgdata, '-m', mode, '-w', '-t', waitSeconds(waitMs)], { env: { LC_MESSAGES: 'C' } });
  const r = await (onGone ? whileWatching(ctx, { watch: 'gone', pgdata, notPid: 0, waitMs, onSeen: onGone }, stop) : stop());
  if (r.exitCode !== 0) {
    throw commandFailed(
      `pg_ctl stop on ${ctx.host.name} failed`,
      r,
      mode === 'smart' ? 'smart mode waits for every session to end; mode fast disconnects them' : undefined,
    );
  }
}

export async function pgCtlReload(ctx: ServerContext, pgdata: string): Promise<void> {
  const r = await runAsOwner(ctx, [pgBin(ctx.host, 'pg_ctl'), 'reload', '-D', pgdata], { env: { LC_MESSAGES: 'C' } });
  if (r.exitCode !== 0) throw commandFailed(`pg_ctl reload on ${ctx.host.name} failed`, r);
}

/** pg_ctl promote, then waits until SQL confirms the server left recovery; returns its facts then. */
export async function pgCtlPromote(ctx: ServerContext, pgdata: string, waitMs: number): Promise<HostFacts> {
  const host = ctx.host;
  const started = Date.now();
  const r = await runAsOwner(ctx, [pgBin(host, 'pg_ctl'), 'promote', '-D', pgdata, '-w', '-t', waitSeconds(waitMs)], {
    env: { LC_MESSAGES: 'C' },
  });
  if (r.exitCode !== 0) throw commandFailed(`pg_ctl promote on ${host.name} failed`, r);
  return awaitOutOfRecovery(ctx, started, waitMs, 'pg_ctl promote');
}

/** Polls the host until it is out of recovery (pg_ctl -w returns once the postmaster reports it; SQL confirms). */
export async function awaitOutOfRecovery(ctx: ServerContext, started: number, waitMs: number, what: string): Promise<HostFacts> {
  const host = ctx.host;
  // The promotion was asked and its command returned: from here on this only reads (ServerContext.changeEnded).
  ctx.changeEnded?.();
  let facts = await probeAfterChange(ctx);
  while (facts.in_recovery !== false) {
    if (Date.now() - started > waitMs) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `${host.name} is still in recovery ${waitSeconds(waitMs)}s after ${what}${facts.error ? ` (${facts.error})` : ''}`,
      });
    }
    await sleep(250, ctx.signal);
    if (ctx.signal.aborted) throw new PgplayError({ code: 'INTERRUPTED', message: `interrupted while waiting for ${host.name} to leave recovery` });
    facts = await probeAfterChange(ctx);
  }
  return facts;
}
