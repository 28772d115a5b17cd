/**
 * Running commands as the cluster's OS user (the owner of PGDATA): everything that touches a data
 * directory does, whichever action it belongs to (postgres, basebackup, recovery, the copy).
 */
import { posix } from 'node:path';
import { failedCommand, PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import type { ServerContext } from './server-context.js';
import type { ExecResult, Transport } from '../transports/types.js';

export function requirePgdata(host: Host): string {
  if (!host.pgdata) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `host ${host.name} has no pgdata in the inventory`,
      expected: `hosts.${host.name}.pgdata: the absolute path of its data directory`,
    });
  }
  return host.pgdata;
}

/** A server binary of the host's PostgreSQL (initdb, pg_ctl, ...). */
export function pgBin(host: Host, name: string): string {
  return posix.join(host.postgres.bindir, name);
}

/** Runs a command as the cluster's OS user: everything that touches PGDATA does. */
export async function runAsOwner(
  ctx: ServerContext,
  argv: string[],
  opts: { host?: Host; transport?: Transport; env?: Record<string, string>; timeoutMs?: number; stdin?: string } = {},
): Promise<ExecResult> {
  const host = opts.host ?? ctx.host;
  const transport = opts.transport ?? transportOf(ctx, host);
  const r = await transport.exec(argv, {
    become: host.postgres.osUser,
    env: opts.env,
    stdin: opts.stdin,
    signal: ctx.signal,
    timeoutMs: opts.timeoutMs ?? ctx.timeoutMs,
  });
  if (r.timedOut) {
    throw new PgplayError({ code: 'TIMEOUT', message: `${posix.basename(argv[0]!)} on ${host.name} timed out and was stopped` });
  }
  return r;
}

/** The transport of a host: the step's own for its host, else the other host's. */
export function transportOf(ctx: ServerContext, host: Host): Transport {
  return host.name === ctx.host.name ? ctx.transport : ctx.transportFor(host.name);
}

export function commandFailed(what: string, r: ExecResult, hint?: string): PgplayError {
  const command = failedCommand(r);
  const tail = command.stderrTail!;
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `${what} (rc ${r.exitCode})${tail.length ? `: ${tail.join('\n')}` : ''}`,
    hint,
    command,
  });
}

/** What is in a directory (names), or null when it does not exist. */
export async function listDir(ctx: ServerContext, path: string, host: Host = ctx.host): Promise<string[] | null> {
  const st = await transportOf(ctx, host).stat(path, { become: host.postgres.osUser });
  if (!st.exists) return null;
  if (st.type !== 'directory') {
    throw new PgplayError({ code: 'GUARD', message: `${path} on ${host.name} exists and is not a directory`, expected: 'a data directory' });
  }
  const r = await runAsOwner(ctx, ['ls', '-A', '--', path], { host, env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw commandFailed(`cannot list ${path} as ${host.postgres.osUser}`, r);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** The major version in PGDATA/PG_VERSION; undefined when there is none (no cluster), NaN when unreadable. */
export async function readPgVersion(ctx: ServerContext, pgdata: string, host: Host = ctx.host): Promise<number | undefined> {
  const text = await transportOf(ctx, host).readFile(posix.join(pgdata, 'PG_VERSION'), { become: host.postgres.osUser });
  if (text === null) return undefined;
  const m = /^\s*(\d+)/.exec(text.toString('utf8'));
  return m ? Number(m[1]) : NaN;
}
