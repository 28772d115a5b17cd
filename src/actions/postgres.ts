import { posix } from 'node:path';
import { parseDuration } from '../core/duration.js';
import { failedCommand, PgplayError, tailLines } from '../core/errors.js';
import { sleep } from '../engine/pool.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { factsArgv, parseFacts } from '../postgres/facts.js';
import type { ExecResult, Transport } from '../transports/types.js';
import { guardDestruction } from './identity-guard.js';
import type { Action, ActionContext, Outcome } from './types.js';

export type PostgresState = 'initialized' | 'started' | 'stopped' | 'restarted' | 'reloaded' | 'promoted';

export interface InitdbOptions {
  encoding?: string;
  locale?: string;
  data_checksums?: boolean;
  auth_local?: string;
  auth_host?: string;
  waldir?: string;
}

export interface PostgresInput {
  state: PostgresState;
  mode?: 'smart' | 'fast' | 'immediate';
  wait_timeout?: string | number;
  log_file?: string;
  allow_primary?: boolean;
  replace?: boolean;
  replace_sysid?: string;
  initdb?: InitdbOptions;
  reason?: string;
}

/** pg_ctl's own default wait; a standby that must replay a lot before it is consistent needs more. */
const DEFAULT_WAIT = '60s';
/** Lines of the startup log quoted when a start fails: enough to name the bad setting. */
const LOG_TAIL_LINES = 8;
const AUTH_METHODS = ['trust', 'reject', 'peer', 'ident', 'md5', 'scram-sha-256', 'password', 'gss', 'sspi', 'pam', 'ldap', 'radius', 'cert'];

export const postgresAction: Action<PostgresInput> = {
  name: 'postgres',
  summary:
    'Puts a host\'s PostgreSQL into a state: initialized (initdb), started, stopped, restarted, reloaded or promoted. ' +
    'Reads the real state first (started on a running server is ok) and runs pg_ctl as the cluster\'s OS user.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['state'],
    properties: {
      state: {
        type: 'string',
        enum: ['initialized', 'started', 'stopped', 'restarted', 'reloaded', 'promoted'],
        description:
          'initialized: initdb when PGDATA holds no cluster (refused when it holds other files). started / stopped: ' +
          'only when not already so. restarted and reloaded: every time the server runs (reloaded skips a stopped server). ' +
          'promoted: pg_ctl promote on a standby, then waits until it is out of recovery; refused (exit 3) when it is not in recovery.',
      },
      mode: {
        type: 'string',
        enum: ['smart', 'fast', 'immediate'],
        description: 'Shutdown mode for stopped and restarted (pg_ctl -m), default fast. smart waits for every session to end; immediate skips the checkpoint (crash recovery at the next start).',
      },
      wait_timeout: {
        type: ['string', 'number'],
        description: `How long pg_ctl waits for a start, stop or promotion to finish (a duration such as 90s or 5m, or seconds); default ${DEFAULT_WAIT}.`,
      },
      log_file: {
        type: 'string',
        pattern: '^/',
        description:
          'Server output until its logging collector takes over (pg_ctl -l), for started and restarted. Default: on a restart, the file the ' +
          'running server writes its output to (its log stays where it was); else <pgdata>/log/pgplay-startup.log. ' +
          'A failed start is reported with the last lines written to it (and to the logging collector\'s newest file when logging_collector is on).',
      },
      reason: {
        type: 'string',
        minLength: 1,
        description:
          'state restarted: why, shown by plan and in the confirmation (e.g. "archive_mode changed"). Restarting a running primary always asks for confirmation (--yes answers).',
      },
      allow_primary: {
        type: 'boolean',
        description:
          'state stopped: allow stopping a server that is a primary (not in recovery). Without it that is refused (exit 3); with it the step is destructive and asks for confirmation (--yes answers).',
      },
      replace: {
        type: 'boolean',
        description:
          'state stopped: the host is being rebuilt (standby-from-backup.yml -p rebuild=true), so a read-write server there may be stopped when it is not the ' +
          'inventory\'s cluster (another system identifier) and holds no user data: a freshly installed host. Never stops the inventory\'s primary or a server of its cluster.',
      },
      replace_sysid: {
        type: 'string',
        pattern: '^([0-9]+)?$',
        description: 'state stopped, with replace: the system identifier of that other cluster, to stop it although it holds user data.',
      },
      initdb: {
        type: 'object',
        additionalProperties: false,
        description: 'state initialized: options for initdb. Unset ones take initdb\'s defaults (locale and encoding from the environment).',
        properties: {
          encoding: { type: 'string', minLength: 1, description: 'Template database encoding, e.g. UTF8 (initdb -E).' },
          locale: { type: 'string', minLength: 1, description: 'Default locale, e.g. C.UTF-8 or en_US.UTF-8 (initdb --locale).' },
          data_checksums: { type: 'boolean', description: 'Data page checksums (initdb -k); also lets pg_rewind work without wal_log_hints.' },
          auth_local: { type: 'string', enum: AUTH_METHODS, description: 'pg_hba.conf method for local (unix socket) connections.' },
          auth_host: { type: 'string', enum: AUTH_METHODS, description: 'pg_hba.conf method for TCP connections.' },
          waldir: { type: 'string', pattern: '^/', description: 'Put pg_wal in this directory (initdb -X); PGDATA gets a symbolic link to it.' },
        },
      },
    },
  },

  destructive(input) {
    return input.state === 'promoted' || (input.state === 'stopped' && (input.allow_primary === true || input.replace === true));
  },

  changesRole(input) {
    if (input.state === 'promoted') return 'promotes';
    return input.state === 'started' || input.state === 'restarted' ? 'starts' : false;
  },

  refreshesFacts: true,

  async check(ctx, input) {
    validateCombination(input);
    const pgdata = requirePgdata(ctx.host);
    switch (input.state) {
      case 'initialized':
        return checkInitialized(ctx, pgdata);
      case 'started': {
        const facts = await probe(ctx);
        if (facts.running) return { changed: false, msg: `running (pid ${facts.pid ?? '?'})`, data: stateData(facts) };
        if (!facts.pgdata_present && !ctx.checkMode) throw noCluster(ctx.host, pgdata);
        return { changed: true, msg: facts.pgdata_present ? 'would start' : 'would start (PGDATA holds no cluster yet)' };
      }
      case 'stopped': {
        const facts = await probe(ctx);
        if (!facts.running) return { changed: false, msg: 'not running', data: stateData(facts) };
        await guardStop(ctx, pgdata, facts, input);
        return { changed: true, msg: `would stop (mode ${input.mode ?? 'fast'}, pid ${facts.pid ?? '?'})` };
      }
      case 'restarted': {
        const facts = await probe(ctx);
        if (!facts.running && !facts.pgdata_present && !ctx.checkMode) throw noCluster(ctx.host, pgdata);
        if (!facts.running) return { changed: true, msg: 'would start (not running)' };
        const msg = input.reason ? `would restart ${ctx.host.name}: ${input.reason}` : `would restart ${ctx.host.name} (mode ${input.mode ?? 'fast'})`;
        return { changed: true, msg, confirm: restartConfirmation(ctx.host, facts, input.reason) };
      }
      case 'reloaded': {
        const facts = await probe(ctx);
        if (!facts.running) {
          return { changed: false, skipped: true, msg: 'not running: nothing to reload (the configuration is read when it starts)' };
        }
        return { changed: true, msg: 'would reload the configuration' };
      }
      case 'promoted':
        return checkPromote(ctx, await probe(ctx));
    }
  },

  async apply(ctx, input) {
    const pgdata = requirePgdata(ctx.host);
    const waitMs = parseDuration(input.wait_timeout ?? DEFAULT_WAIT, 'wait_timeout');
    switch (input.state) {
      case 'initialized':
        return initdb(ctx, pgdata, input.initdb ?? {});
      case 'started': {
        const facts = await probe(ctx);
        if (facts.running) return { changed: false, msg: `running (pid ${facts.pid ?? '?'})`, data: stateData(facts) };
        return start(ctx, pgdata, input, waitMs);
      }
      case 'stopped': {
        const facts = await probe(ctx);
        if (!facts.running) return { changed: false, msg: 'not running', data: stateData(facts) };
        await guardStop(ctx, pgdata, facts, input);
        return stop(ctx, pgdata, input, waitMs);
      }
      case 'restarted': {
        const facts = await probe(ctx);
        if (!facts.running) return start(ctx, pgdata, input, waitMs);
        return restart(ctx, pgdata, input, waitMs, facts);
      }
      case 'reloaded': {
        const facts = await probe(ctx);
        if (!facts.running) return { changed: false, skipped: true, msg: 'not running: nothing to reload' };
        return reload(ctx, pgdata);
      }
      case 'promoted': {
        const facts = await probe(ctx);
        checkPromote({ ...ctx, checkMode: false }, facts);
        return promote(ctx, pgdata, facts, waitMs);
      }
    }
  },
};

export default postgresAction;

function validateCombination(input: PostgresInput): void {
  const misplaced = (key: string, states: string) =>
    new PgplayError({ code: 'SEMANTIC', message: `postgres: ${key} does not apply to state ${input.state}`, expected: `${key} only with state ${states}` });
  if (input.initdb !== undefined && input.state !== 'initialized') throw misplaced('initdb', 'initialized');
  if (input.mode !== undefined && input.state !== 'stopped' && input.state !== 'restarted') throw misplaced('mode', 'stopped or restarted');
  if (input.allow_primary !== undefined && input.state !== 'stopped') throw misplaced('allow_primary', 'stopped');
  if (input.log_file !== undefined && input.state !== 'started' && input.state !== 'restarted') throw misplaced('log_file', 'started or restarted');
  if (input.reason !== undefined && input.state !== 'restarted') throw misplaced('reason', 'restarted');
  if (input.wait_timeout !== undefined) parseDuration(input.wait_timeout, 'wait_timeout');
}

// ---------------------------------------------------------------------------------------------
// Helpers shared with the other PostgreSQL-aware actions (basebackup, recovery).

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
  ctx: ActionContext,
  argv: string[],
  opts: { host?: Host; transport?: Transport; env?: Record<string, string>; timeoutMs?: number; stdin?: string } = {},
): Promise<ExecResult> {
  const host = opts.host ?? ctx.host;
  const transport = opts.transport ?? (host.name === ctx.host.name ? ctx.transport : ctx.transportFor(host.name));
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

/**
 * Fresh facts of a host, read now (not the ones gathered at the start of the run): actions decide on
 * the state they find, which an earlier step (or a person) may have changed since.
 */
export async function probe(ctx: ActionContext, hostName = ctx.host.name): Promise<HostFacts> {
  const host = ctx.hosts[hostName] ?? (hostName === ctx.host.name ? ctx.host : undefined);
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: `no host ${hostName} in the inventory` });
  requirePgdata(host);
  const r = await runAsOwner(ctx, factsArgv(host), { host, timeoutMs: 30_000 });
  return parseFacts(r.stdout);
}

export { tailLines };

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

function noCluster(host: Host, pgdata: string): PgplayError {
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `${pgdata} on ${host.name} holds no PostgreSQL cluster (no PG_VERSION)`,
    hint: 'create it first: postgres {state: initialized}, basebackup or a restore',
  });
}

function stateData(facts: HostFacts): Record<string, unknown> {
  const data: Record<string, unknown> = { running: facts.running };
  if (facts.pid !== undefined) data.pid = facts.pid;
  if (facts.in_recovery !== undefined) data.in_recovery = facts.in_recovery;
  if (facts.timeline !== undefined) data.timeline = facts.timeline;
  if (facts.version !== undefined) data.version = facts.version;
  return data;
}

// ---------------------------------------------------------------------------------------------
// initialized

/** What is in a directory (names), or null when it does not exist. */
export async function listDir(ctx: ActionContext, path: string, host: Host = ctx.host): Promise<string[] | null> {
  const transport = host.name === ctx.host.name ? ctx.transport : ctx.transportFor(host.name);
  const st = await transport.stat(path, { become: host.postgres.osUser });
  if (!st.exists) return null;
  if (st.type !== 'directory') {
    throw new PgplayError({ code: 'GUARD', message: `${path} on ${host.name} exists and is not a directory`, expected: 'a data directory' });
  }
  const r = await runAsOwner(ctx, ['ls', '-A', '--', path], { host, env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw commandFailed(`cannot list ${path} as ${host.postgres.osUser}`, r);
  return r.stdout.split('\n').filter((l) => l !== '');
}

async function readPgVersion(ctx: ActionContext, pgdata: string): Promise<number | undefined> {
  const text = await ctx.transport.readFile(posix.join(pgdata, 'PG_VERSION'), { become: ctx.host.postgres.osUser });
  if (text === null) return undefined;
  const m = /^\s*(\d+)/.exec(text.toString('utf8'));
  return m ? Number(m[1]) : NaN;
}

async function checkInitialized(ctx: ActionContext, pgdata: string): Promise<Outcome> {
  const host = ctx.host;
  const version = await readPgVersion(ctx, pgdata);
  if (version !== undefined) {
    if (version !== host.postgres.version) {
      throw new PgplayError({
        code: 'GUARD',
        message: `${pgdata} on ${host.name} holds a PostgreSQL ${Number.isNaN(version) ? '(unreadable PG_VERSION)' : version} cluster, but the inventory says ${host.postgres.version}`,
        expected: `a PostgreSQL ${host.postgres.version} cluster, or postgres.version: ${version} for this host`,
      });
    }
    return { changed: false, msg: `${pgdata} holds a PostgreSQL ${version} cluster`, data: { pgdata, version } };
  }
  // An empty directory may still be another host's PGDATA (the primary's, emptied by a lost disk).
  await guardDestruction(ctx, { verb: 'initdb in', path: pgdata, cluster: false });
  const entries = await listDir(ctx, pgdata);
  if (entries && entries.length > 0) {
    const shown = entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, ... (${entries.length} entries)` : '');
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to initdb ${pgdata} on ${host.name}: it is not empty and holds no cluster (${shown})`,
      expected: 'an empty or missing directory',
      hint: 'point pgdata at an empty directory, or empty this one yourself if its files are not needed',
    });
  }
  return { changed: true, msg: `would run initdb in ${pgdata}${entries ? '' : ' (created)'}` };
}

async function initdb(ctx: ActionContext, pgdata: string, o: InitdbOptions): Promise<Outcome> {
  const planned = await checkInitialized(ctx, pgdata);
  if (!planned.changed) return planned;
  const host = ctx.host;
  const argv = [pgBin(host, 'initdb'), '-D', pgdata, `--username=${host.postgres.superuser}`];
  if (o.encoding) argv.push(`--encoding=${o.encoding}`);
  if (o.locale) argv.push(`--locale=${o.locale}`);
  if (o.data_checksums) argv.push('--data-checksums');
  if (o.auth_local) argv.push(`--auth-local=${o.auth_local}`);
  if (o.auth_host) argv.push(`--auth-host=${o.auth_host}`);
  if (o.waldir) argv.push(`--waldir=${o.waldir}`);
  const r = await runAsOwner(ctx, argv);
  if (r.exitCode !== 0) throw commandFailed(`initdb ${pgdata} failed`, r);
  const version = await readPgVersion(ctx, pgdata);
  return {
    changed: true,
    msg: `initialized a PostgreSQL ${version ?? host.postgres.version} cluster in ${pgdata}`,
    data: { pgdata, version, data_checksums: o.data_checksums === true },
  };
}

// ---------------------------------------------------------------------------------------------
// started / stopped / restarted

/** Where a start writes the server's output when the step names no log_file. */
function defaultLogFile(pgdata: string): string {
  return posix.join(pgdata, 'log', 'pgplay-startup.log');
}

function waitSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/**
 * Restarting a running primary cuts every session and stops writes while it is down: a human (or
 * --yes) confirms it. One yes answers every restart of that host in the run (key "restart"), so the
 * early gate of a playbook (pending_restart) and the restart itself ask once.
 */
export function restartConfirmation(host: Host, facts: HostFacts, reason?: string): Outcome['confirm'] {
  if (!facts.running || facts.in_recovery === true) return undefined;
  return {
    message: `restart ${host.name}${reason ? `: ${reason}` : ''} (${host.name} is ${facts.in_recovery === false ? 'the primary' : 'possibly a primary'}: its sessions are cut and writes stop while it restarts)`,
    key: 'restart',
  };
}

/**
 * The PATH of a server pgplay starts: archive_command, restore_command and friends find their tools
 * here, the same whoever (and from wherever) pgplay was run. The preflight action checks tools on it.
 */
export const SERVER_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Starts argv (pg_ctl) with a clean environment: only PATH (SERVER_PATH), PGDATA and the locale
 * (LANG, LC_*) of the session. The postmaster and every command it runs inherit this environment, so
 * nothing of pgplay's own (its PATH, PGPLAY_* variables, secrets of other tools) leaks into them.
 */
export function cleanServerEnv(pgdata: string, argv: string[]): string[] {
  const script =
    'pgdata=$1; shift; ' +
    `set -- PATH=${SERVER_PATH} "PGDATA=$pgdata" $(env | grep -E '^(LANG|LC_[A-Z_]+)=[A-Za-z0-9_.@-]*$') "$@"; ` +
    'exec env -i "$@"';
  return ['/bin/sh', '-c', script, 'pgplay-clean-env', pgdata, ...argv];
}

/**
 * The file a running postmaster writes its output to (its stderr), when that is a regular file: a
 * restart keeps the server's log where it was instead of moving it to pgplay's default.
 */
async function currentLogFile(ctx: ActionContext, pid: number | undefined): Promise<string | undefined> {
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
async function collectorTail(ctx: ActionContext, pgdata: string): Promise<string[]> {
  const script =
    'pg=$1; d=$2; [ "$("$pg" -D "$d" -C logging_collector 2>/dev/null)" = on ] || exit 0; ' +
    'dir=$("$pg" -D "$d" -C log_directory 2>/dev/null); case $dir in /*) ;; *) dir=$d/$dir ;; esac; ' +
    'f=$(ls -t "$dir" 2>/dev/null | head -n 1); [ -n "$f" ] && tail -n 40 "$dir/$f"';
  const r = await runAsOwner(ctx, ['/bin/sh', '-c', script, 'pgplay-collector-tail', pgBin(ctx.host, 'postgres'), pgdata], { timeoutMs: 30_000 });
  return r.exitCode === 0 ? tailLines(r.stdout, LOG_TAIL_LINES) : [];
}

/**
 * Runs a pg_ctl command that starts a postmaster, in a clean environment (cleanServerEnv). pg_ctl
 * hands the server's output to the log file (without -l it would keep our pipe open for as long as
 * the server runs); on failure the lines this attempt wrote to it, or to the logging collector's file
 * when the configuration has one, are what name the problem (a bad setting, a port in use, a missing file).
 */
async function startingCommand(
  ctx: ActionContext,
  pgdata: string,
  input: PostgresInput,
  waitMs: number,
  command: 'start' | 'restart',
  running?: HostFacts,
): Promise<void> {
  const host = ctx.host;
  const log = input.log_file ?? (command === 'restart' ? await currentLogFile(ctx, running?.pid) : undefined) ?? defaultLogFile(pgdata);
  const mk = await runAsOwner(ctx, ['mkdir', '-p', '--', posix.dirname(log)], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (mk.exitCode !== 0) throw commandFailed(`cannot create the directory of the log file ${log}`, mk);
  const before = (await ctx.transport.stat(log, { become: host.postgres.osUser })).size ?? 0;
  const argv = [pgBin(host, 'pg_ctl'), command, '-D', pgdata, '-l', log, '-w', '-t', waitSeconds(waitMs)];
  if (command === 'restart') argv.push('-m', input.mode ?? 'fast');
  ctx.log(`pg_ctl ${command} (log ${log})`);
  const r = await runAsOwner(ctx, cleanServerEnv(pgdata, argv), { env: { LC_MESSAGES: 'C' } });
  if (r.exitCode === 0) return;

  const all = (await ctx.transport.readFile(log, { become: host.postgres.osUser })) ?? Buffer.alloc(0);
  // Only what this attempt wrote: an older failure further up the file would name the wrong cause.
  const fresh = (all.length >= before ? all.subarray(before) : all).toString('utf8');
  const own = tailLines(fresh, LOG_TAIL_LINES);
  const lines = own.length ? own : await collectorTail(ctx, pgdata);
  const pgctl = tailLines(r.stderr || r.stdout, 3).join(' ');
  const timedOut = /did not start in time/i.test(pgctl);
  throw new PgplayError({
    code: 'STEP_FAILED',
    message: timedOut
      ? `PostgreSQL on ${host.name} did not finish starting within ${waitSeconds(waitMs)}s; it may still be starting${lines.length ? `. Last log lines:\n${lines.join('\n')}` : ''}`
      : `PostgreSQL did not start on ${host.name}${lines.length ? `:\n${lines.join('\n')}` : `: ${pgctl || `pg_ctl ${command} exited with rc ${r.exitCode}`}`}`,
    hint: `the server's startup log is ${log}${own.length ? '' : ' (and its logging collector\'s files, when logging_collector is on)'}`,
    command: { argv, rc: r.exitCode, stderrTail: lines.length ? lines : tailLines(r.stderr || r.stdout, 3) },
  });
}

async function start(ctx: ActionContext, pgdata: string, input: PostgresInput, waitMs: number): Promise<Outcome> {
  const version = await readPgVersion(ctx, pgdata);
  if (version === undefined) throw noCluster(ctx.host, pgdata);
  await startingCommand(ctx, pgdata, input, waitMs, 'start');
  const facts = await probe(ctx);
  return { changed: true, msg: `started (pid ${facts.pid ?? '?'}${facts.in_recovery ? ', in recovery' : ''})`, data: stateData(facts) };
}

async function restart(ctx: ActionContext, pgdata: string, input: PostgresInput, waitMs: number, running: HostFacts): Promise<Outcome> {
  await startingCommand(ctx, pgdata, input, waitMs, 'restart', running);
  const facts = await probe(ctx);
  return {
    changed: true,
    msg: `restarted${input.reason ? ` (${input.reason})` : ''} (mode ${input.mode ?? 'fast'}, pid ${facts.pid ?? '?'})`,
    data: stateData(facts),
  };
}

/**
 * Stopping is refused for a primary unless allow_primary, and for a server whose PGDATA is another
 * inventory host's (a drill host pointed at the primary's directory). A read-write server stopped on
 * purpose (allow_primary) must also hold the inventory's cluster: a drill's kept copy or the fenced
 * primary, never an unrelated server that happens to live at this path.
 */
async function guardStop(ctx: ActionContext, pgdata: string, facts: HostFacts, input: PostgresInput): Promise<void> {
  if (input.replace === true && input.allow_primary !== true && facts.in_recovery === false && ctx.host.role !== 'primary') {
    // A host being rebuilt: its read-write server may be stopped only when it is another cluster without
    // user data (a freshly installed host); the inventory's cluster read-write is a primary, refused below.
    const examined = await guardDestruction(ctx, { verb: 'stop the server of', path: pgdata, cluster: true, replace: true, replaceSysid: input.replace_sysid || undefined });
    if (examined.replacing) return;
  }
  guardPrimaryStop(ctx.host, facts, input);
  await guardDestruction(ctx, { verb: 'stop the server of', path: pgdata, cluster: facts.in_recovery !== true });
}

function guardPrimaryStop(host: Host, facts: HostFacts, input: PostgresInput): void {
  if (input.allow_primary === true || facts.in_recovery === true) return;
  const why =
    facts.in_recovery === false
      ? 'it is a running primary (not in recovery)'
      : `cannot tell whether it is a primary${facts.error ? ` (${facts.error})` : ''}`;
  throw new PgplayError({
    code: 'GUARD',
    message: `refusing to stop ${host.name}: ${why}`,
    hint: 'set allow_primary: true to stop a primary on purpose; the step then asks for confirmation (--yes answers it)',
  });
}

async function stop(ctx: ActionContext, pgdata: string, input: PostgresInput, waitMs: number): Promise<Outcome> {
  const mode = input.mode ?? 'fast';
  const r = await runAsOwner(ctx, [pgBin(ctx.host, 'pg_ctl'), 'stop', '-D', pgdata, '-m', mode, '-w', '-t', waitSeconds(waitMs)], {
    env: { LC_MESSAGES: 'C' },
  });
  if (r.exitCode !== 0) {
    throw commandFailed(
      `pg_ctl stop on ${ctx.host.name} failed`,
      r,
      mode === 'smart' ? 'smart mode waits for every session to end; mode fast disconnects them' : undefined,
    );
  }
  return { changed: true, msg: `stopped (mode ${mode})`, data: { running: false } };
}

// ---------------------------------------------------------------------------------------------
// reloaded

async function reload(ctx: ActionContext, pgdata: string): Promise<Outcome> {
  const r = await runAsOwner(ctx, [pgBin(ctx.host, 'pg_ctl'), 'reload', '-D', pgdata], { env: { LC_MESSAGES: 'C' } });
  if (r.exitCode !== 0) throw commandFailed(`pg_ctl reload on ${ctx.host.name} failed`, r);
  const verdict = await configVerdict(ctx);
  if (verdict && verdict.errors.length > 0) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `reloaded ${ctx.host.name}, but the server ignores settings it cannot read:\n${verdict.errors.join('\n')}`,
      hint: 'fix the files and reload again; the server keeps the previous value of each setting named here',
    });
  }
  const data: Record<string, unknown> = { pending_restart: verdict?.pendingRestart ?? [] };
  const pending = verdict?.pendingRestart ?? [];
  return {
    changed: true,
    msg: pending.length ? `reloaded; a restart is needed for ${pending.join(', ')}` : 'reloaded',
    data,
  };
}

/**
 * What the server makes of its configuration files right now. pg_file_settings parses them afresh at
 * query time, so it needs no wait for the reload to land. Undefined when no connection can be had
 * (the reload itself has happened; only the verdict is missing).
 */
async function configVerdict(ctx: ActionContext): Promise<{ errors: string[]; pendingRestart: string[] } | undefined> {
  let client;
  try {
    client = await ctx.connectPostgres();
  } catch (e) {
    ctx.log(`cannot read pg_file_settings after the reload: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
  try {
    // "setting could not be applied" means either a changed restart-only setting (postmaster context)
    // or a value the server refuses; the setting's context tells them apart.
    const res = await client.query<{ sourcefile: string | null; sourceline: number | null; name: string | null; setting: string | null; error: string; context: string | null }>(
      `select f.sourcefile, f.sourceline, f.name, f.setting, f.error, s.context
         from pg_file_settings f left join pg_settings s on s.name = f.name
        where f.error is not null order by f.seqno`,
    );
    const errors: string[] = [];
    const pending = new Set<string>();
    for (const row of res.rows) {
      const where = `${row.sourcefile ?? '?'}:${row.sourceline ?? '?'}`;
      if (row.context === 'postmaster' && row.name) pending.add(row.name);
      else if (row.name && row.context) errors.push(`${where}: ${row.name} = '${row.setting ?? ''}' is not accepted`);
      else errors.push(`${where}: ${row.error}${row.name ? ` (${row.name})` : ''}`);
    }
    return { errors, pendingRestart: [...pending] };
  } finally {
    await client.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// promoted

function checkPromote(ctx: ActionContext, facts: HostFacts): Outcome {
  const host = ctx.host;
  if (!facts.running) {
    if (ctx.checkMode) return { changed: true, msg: 'would promote (once it is running)' };
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot promote ${host.name}: PostgreSQL is not running`,
      hint: 'start the standby first (postgres: {state: started})',
    });
  }
  if (facts.in_recovery === false) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to promote ${host.name}: it is not in recovery`,
      expected: 'a running standby',
      hint: 'it already accepts writes; add `when: facts.in_recovery` to make the step skip a promoted server',
    });
  }
  if (facts.in_recovery === undefined) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot tell whether ${host.name} is in recovery${facts.error ? `: ${facts.error}` : ''}`,
    });
  }
  return { changed: true, msg: `would promote ${host.name} (timeline ${facts.timeline ?? '?'})` };
}

async function promote(ctx: ActionContext, pgdata: string, before: HostFacts, waitMs: number): Promise<Outcome> {
  const host = ctx.host;
  const started = Date.now();
  const r = await runAsOwner(ctx, [pgBin(host, 'pg_ctl'), 'promote', '-D', pgdata, '-w', '-t', waitSeconds(waitMs)], {
    env: { LC_MESSAGES: 'C' },
  });
  if (r.exitCode !== 0) throw commandFailed(`pg_ctl promote on ${host.name} failed`, r);
  // pg_ctl -w returns once the postmaster reports the end of recovery; confirm it from SQL.
  let facts = await probe(ctx);
  while (facts.in_recovery !== false) {
    if (Date.now() - started > waitMs) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `${host.name} is still in recovery ${waitSeconds(waitMs)}s after pg_ctl promote${facts.error ? ` (${facts.error})` : ''}`,
      });
    }
    await sleep(250, ctx.signal);
    if (ctx.signal.aborted) throw new PgplayError({ code: 'INTERRUPTED', message: `interrupted while waiting for ${host.name} to leave recovery` });
    facts = await probe(ctx);
  }
  return {
    changed: true,
    msg: `promoted ${host.name}: timeline ${before.timeline ?? '?'} -> ${facts.timeline ?? '?'}`,
    data: { in_recovery: false, timeline: facts.timeline, previous_timeline: before.timeline, duration_ms: Date.now() - started },
  };
}
