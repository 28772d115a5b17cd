/**
 * What the dump and restore_dump actions share: the dump directory as the PostgreSQL OS user sees it
 * (listing, checksum verification, removal) and how a host's client tools reach another host's server.
 */
import { posix } from 'node:path';
import { PgplayError } from '../../core/errors.js';
import type { Host } from '../../model/inventory.js';
import { dumpsIn, filesOf, type DumpEntry } from '../../postgres/dump-files.js';
import { commandFailed } from '../../postgres/owner.js';
import type { ExecResult, Transport } from '../../transports/types.js';
import type { ActionContext } from '../types.js';

/** Runs a command on a host as its PostgreSQL OS user, from / (it may not enter root's directory). */
export async function runAs(ctx: ActionContext, host: Host, transport: Transport, argv: string[], env?: Record<string, string>): Promise<ExecResult> {
  const r = await transport.exec(argv, { become: host.postgres.osUser, cwd: '/', env, signal: ctx.signal, timeoutMs: ctx.timeoutMs });
  if (r.timedOut) throw new PgplayError({ code: 'TIMEOUT', message: `${posix.basename(argv[0] === '/bin/sh' ? 'sh' : argv[0]!)} on ${host.name} timed out and was stopped` });
  return r;
}

/** The dumps of the cluster in a directory, newest first; a directory that does not exist holds none. */
export async function listDumps(ctx: ActionContext, host: Host, transport: Transport, dir: string): Promise<DumpEntry[]> {
  const r = await runAs(ctx, host, transport, ['/bin/sh', '-c', 'cd "$1" 2>/dev/null || exit 0; for f in *; do [ -e "$f" ] && printf "%s\\n" "$f"; done; exit 0', 'pgplay-list', dir]);
  if (r.exitCode !== 0) throw commandFailed(`listing ${dir} on ${host.name} failed`, r);
  return dumpsIn(r.stdout.split('\n').filter(Boolean), ctx.inventory.cluster);
}

const VERIFY = `cd "$1" || exit 2; shift
for n; do
  if [ ! -f "$n.sha256" ]; then echo "$n: no checksum file $n.sha256"; continue; fi
  sha256sum --check --strict --quiet -- "$n.sha256" 2>&1 | sed "s|^|$n: |"
done
exit 0`;

/** Checks dumps against their checksum files; returns one line per file that does not match (empty: all match). */
export async function verifyDumps(ctx: ActionContext, host: Host, transport: Transport, dir: string, names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const r = await runAs(ctx, host, transport, ['/bin/sh', '-c', VERIFY, 'pgplay-verify', dir, ...names]);
  if (r.exitCode !== 0) throw commandFailed(`checking the checksums in ${dir} on ${host.name} failed`, r);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/WARNING: \d+ (computed checksum|listed file)/.test(l));
}

/** Removes dumps, each one's checksum file first (a dump removed half-way is incomplete, never complete). */
export async function removeDumps(ctx: ActionContext, host: Host, transport: Transport, dir: string, names: string[]): Promise<void> {
  if (names.length === 0) return;
  const paths = names.flatMap((n) => filesOf(n));
  const r = await runAs(ctx, host, transport, ['/bin/sh', '-c', 'cd "$1" && shift && for f; do rm -rf -- "$f" || exit 1; done', 'pgplay-remove', dir, ...paths]);
  if (r.exitCode !== 0) throw commandFailed(`removing dumps from ${dir} on ${host.name} failed`, r);
}

/**
 * How client tools on `from` reach `server`'s PostgreSQL: its socket on the same host or when both are
 * on this machine, else its address over TCP (a password then comes from a .pgpass: `from`'s
 * pgpass_file host var when set, else the OS user's ~/.pgpass).
 */
export function clientConnection(from: Host, server: Host): { args: string[]; env: Record<string, string> } {
  const local = from.name === server.name || (from.connection.transport === 'local' && server.connection.transport === 'local');
  const env: Record<string, string> = {};
  const pgpass = from.vars?.pgpass_file;
  if (typeof pgpass === 'string' && pgpass) env.PGPASSFILE = pgpass;
  return { args: ['-h', local ? server.postgres.socketDir : server.address, '-p', String(server.postgres.port), '-U', server.postgres.superuser], env };
}

export function hostNamed(ctx: ActionContext, name: string, what: string): Host {
  const host = ctx.hosts[name];
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: `${what} ${name} is not a host of the inventory`, expected: `one of ${Object.keys(ctx.hosts).join(', ')}` });
  return host;
}

export function primaryHost(ctx: ActionContext): Host {
  const p = Object.values(ctx.hosts).find((h) => h.role === 'primary');
  if (!p) throw new PgplayError({ code: 'SEMANTIC', message: 'the inventory has no primary', expected: 'a host with role primary' });
  return p;
}

/** A list given as an array or as a comma-separated string (a playbook param). */
export function listOf(v: string[] | string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : v.split(',')).map((x) => x.trim()).filter(Boolean);
}
