/** Where a server writes its log, and the lines that name why it failed. */
import { posix } from 'node:path';
import { tailLines } from '../core/errors.js';
import type { ServerContext } from './server-context.js';
import { pgBin, runAsOwner } from './owner.js';

/** Lines of a log quoted when a start fails: enough to name the bad setting. */
export const LOG_TAIL_LINES = 8;

/** Where a start writes the server's output when the step names no log_file. */
export function defaultLogFile(pgdata: string): string {
  return posix.join(pgdata, 'log', 'pgplay-startup.log');
}

/**
 * The file a running postmaster writes its output to (its stderr), when that is a regular file: a
 * restart keeps the server's log where it was instead of moving it to pgplay's default.
 */
export async function currentLogFile(ctx: ServerContext, pid: number | undefined): Promise<string | undefined> {
  if (pid === undefined) return undefined;
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', 'f=$(readlink "/proc/$1/fd/2") && [ -f "$f" ] && printf %s "$f"', 'pgplay-log-of', String(pid)], {
    timeoutMs: 30_000,
  });
  const file = r.stdout.trim();
  return r.exitCode === 0 && file.startsWith('/') ? file : undefined;
}

/**
 * The newest lines of the logging collector's newest file, when the configuration turns the collector
 * on: a server that got far enough to start it logs its failure there, not to pg_ctl's -l file.
 */
export async function collectorTail(ctx: ServerContext, pgdata: string): Promise<string[]> {
  const script =
    'pg=$1; d=$2; [ "$("$pg" -D "$d" -C logging_collector 2>/dev/null)" = on ] || exit 0; ' +
    'dir=$("$pg" -D "$d" -C log_directory 2>/dev/null); case $dir in /*) ;; *) dir=$d/$dir ;; esac; ' +
    'f=$(ls -t "$dir" 2>/dev/null | head -n 1); [ -n "$f" ] && tail -n 40 "$dir/$f"';
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', script, 'pgplay-collector-tail', pgBin(ctx.host, 'postgres'), pgdata], { timeoutMs: 30_000 });
  return r.exitCode === 0 ? tailLines(r.stdout, LOG_TAIL_LINES) : [];
}

/** The size of a log file now (0 when it does not exist): what a later read skips. */
export async function logSize(ctx: ServerContext, log: string): Promise<number> {
  return (await ctx.transport.stat(log, { become: ctx.host.postgres.osUser })).size ?? 0;
}

/** The lines written to a log after `before` bytes (all of it when the file was replaced and is shorter now). */
export async function logSince(ctx: ServerContext, log: string, before: number): Promise<string> {
  const all = (await ctx.transport.readFile(log, { become: ctx.host.postgres.osUser })) ?? Buffer.alloc(0);
  return (all.length >= before ? all.subarray(before) : all).toString('utf8');
}
