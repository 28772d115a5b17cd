import { parseDuration } from '../core/duration.js';
import { PgplayError } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { configVerdict } from '../postgres/config-verdict.js';
import { listDir, pgBin, readPgVersion, requirePgdata, runAsOwner, commandFailed } from '../postgres/owner.js';
import { checkServiceView, promoteServer, reloadServer, serviceShell, startServer, statusShell, stopServer } from '../postgres/service.js';
import { probe, probeAfterChange, stateData } from '../postgres/probe.js';
import { restartConfirmation } from '../postgres/restart-confirmation.js';
import { guardDestruction, type DestructionRequest } from './identity-guard.js';
import { ENGINE_SERVER_READ, type Action, type ActionContext, type Outcome } from './types.js';

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
const AUTH_METHODS = ['trust', 'reject', 'peer', 'ident', 'md5', 'scram-sha-256', 'password', 'gss', 'sspi', 'pam', 'ldap', 'radius', 'cert'];

export const postgresAction: Action<PostgresInput> = {
  name: 'postgres',
  connects: true,
  summary:
    'Puts a host\'s PostgreSQL into a state: initialized (initdb), started, stopped, restarted, reloaded or promoted. ' +
    'Reads the real state first (started on a running server is ok) and acts through the host\'s service manager (postgres.service: pg_ctl as the cluster\'s OS user, pg_ctlcluster, or systemd).',
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

  confirmation(input) {
    return input.state === 'restarted' ? 'restarting a running primary asks for confirmation (its clients are cut off)' : undefined;
  },

  changesRole(input) {
    if (input.state === 'promoted') return 'promotes';
    return input.state === 'started' || input.state === 'restarted' ? 'starts' : false;
  },

  changes: (input) => (input.state === 'initialized' ? ['pgdata'] : ['server']),

  async check(ctx, input) {
    validateCombination(input);
    const pgdata = requirePgdata(ctx.host);
    switch (input.state) {
      case 'initialized':
        return checkInitialized(ctx, pgdata);
      case 'started': {
        const facts = await probeForApply(ctx);
        if (facts.running) return { changed: false, msg: `running (pid ${facts.pid ?? '?'})`, data: stateData(facts) };
        if (!facts.pgdata_present && !ctx.checkMode) throw noCluster(ctx.host, pgdata);
        return { changed: true, msg: facts.pgdata_present ? 'would start' : 'would start (PGDATA holds no cluster yet)' };
      }
      case 'stopped': {
        const facts = await probeGuardedStop(ctx, pgdata, input);
        if (!facts.running) return { changed: false, msg: 'not running', data: stateData(facts) };
        ctx.checkReads?.set(STOP_GUARDED, facts);
        return { changed: true, msg: `would stop (mode ${input.mode ?? 'fast'}, pid ${facts.pid ?? '?'})` };
      }
      case 'restarted': {
        const facts = await probeForApply(ctx);
        if (!facts.running && !facts.pgdata_present && !ctx.checkMode) throw noCluster(ctx.host, pgdata);
        if (!facts.running) return { changed: true, msg: 'would start (not running)' };
        const msg = input.reason ? `would restart ${ctx.host.name}: ${input.reason}` : `would restart ${ctx.host.name} (mode ${input.mode ?? 'fast'})`;
        return { changed: true, msg, confirm: restartConfirmation(ctx.host, facts, input.reason) };
      }
      case 'reloaded': {
        const facts = await probeForApply(ctx);
        if (!facts.running) {
          return { changed: false, skipped: true, msg: 'not running: nothing to reload (the configuration is read when it starts)' };
        }
        return { changed: true, msg: 'would reload the configuration' };
      }
      case 'promoted':
        return checkPromote(ctx, await probe(ctx));
    }
  },

  validateInput: (input) => validateCombination(input),

  async exportShell(ctx, input) {
    const pgdata = requirePgdata(ctx.host);
    if (input.state === 'initialized') throw new PgplayError({ code: 'USAGE', message: 'initdb is not exported: its options and guards need pgplay' });
    const waitMs = parseDuration(input.wait_timeout ?? DEFAULT_WAIT, 'wait_timeout');
    const verb = ({ started: 'start', stopped: 'stop', restarted: 'restart', reloaded: 'reload', promoted: 'promote' } as const)[input.state];
    const act = serviceShell(ctx.host, pgdata, verb, { mode: input.mode, waitMs });
    // The state is read when the script runs (earlier parts stop, restore, start servers), as apply reads it.
    const running = statusShell(ctx.host, pgdata);
    const guard = verb === 'start' ? `if ! ${running} >/dev/null 2>&1; then` : verb === 'stop' || verb === 'reload' ? `if ${running} >/dev/null 2>&1; then` : undefined;
    return { runAlways: true, commands: guard ? [guard, ...act.map((l) => `  ${l}`), 'fi'] : act };
  },

  async apply(ctx, input, planned) {
    const pgdata = requirePgdata(ctx.host);
    const waitMs = parseDuration(input.wait_timeout ?? DEFAULT_WAIT, 'wait_timeout');
    switch (input.state) {
      case 'initialized':
        return initdb(ctx, pgdata, input.initdb ?? {});
      case 'started': {
        const facts = await probedByCheck(ctx, planned);
        if (facts.running) return { changed: false, msg: `running (pid ${facts.pid ?? '?'})`, data: stateData(facts) };
        await checkServiceView(ctx, pgdata, facts);
        return start(ctx, pgdata, input, waitMs, facts);
      }
      case 'stopped': {
        // The server and its PGDATA as check read them and guardStop passed them moments ago, in this
        // attempt, with no human asked in between (the engine empties checkReads then); else read afresh.
        const facts = (ctx.checkReads?.get(STOP_GUARDED) as HostFacts | undefined) ?? (await probeGuardedStop(ctx, pgdata, input));
        if (!facts.running) return { changed: false, msg: 'not running', data: stateData(facts) };
        await checkServiceView(ctx, pgdata, facts);
        return stop(ctx, pgdata, input, waitMs);
      }
      case 'restarted': {
        const facts = await probedByCheck(ctx, planned);
        await checkServiceView(ctx, pgdata, facts);
        if (!facts.running) return start(ctx, pgdata, input, waitMs, facts);
        return restart(ctx, pgdata, input, waitMs, facts);
      }
      case 'reloaded': {
        const facts = await probedByCheck(ctx, planned);
        if (!facts.running) return { changed: false, skipped: true, msg: 'not running: nothing to reload' };
        await checkServiceView(ctx, pgdata, facts);
        return reload(ctx, pgdata);
      }
      case 'promoted': {
        const facts = await probe(ctx);
        checkPromote({ ...ctx, checkMode: false }, facts);
        await checkServiceView(ctx, pgdata, facts);
        return promote(ctx, pgdata, facts, waitMs);
      }
    }
  },
};

export default postgresAction;

/**
 * What check read, for apply: the server's state is probed once per step, kept in the attempt's
 * ctx.checkReads (a new map per attempt, shared by its check and apply; the engine empties it when a
 * human was asked). Apply reads again whenever a confirmation was planned (planned.confirm: a human
 * may have taken their time) and for every step whose guards decide on that state (promote: probed
 * fresh in apply, never taken from here; a stop takes the read its guardStop passed, STOP_GUARDED).
 */
const PROBED = 'postgres.probed';

/** checkReads key: the running server a stop's check probed and guardStop let pass (its identity read included). */
const STOP_GUARDED = 'postgres.stop.guarded';

async function probeForApply(ctx: ActionContext): Promise<HostFacts> {
  // A start or restart: the engine read this server for this step moments ago (the one-primary
  // invariant's read, after the locks, on the first attempt); that is the probe, not a second one.
  const facts = (ctx.checkReads?.get(ENGINE_SERVER_READ) as HostFacts | undefined) ?? (await probe(ctx));
  ctx.checkReads?.set(PROBED, facts);
  return facts;
}

async function probedByCheck(ctx: ActionContext, planned: Outcome): Promise<HostFacts> {
  const facts = planned.confirm ? undefined : (ctx.checkReads?.get(PROBED) as HostFacts | undefined);
  ctx.checkReads?.delete(PROBED);
  return facts ?? probe(ctx);
}

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

function noCluster(host: Host, pgdata: string): PgplayError {
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `${pgdata} on ${host.name} holds no PostgreSQL cluster (no PG_VERSION)`,
    hint: 'create it first: postgres {state: initialized}, basebackup or a restore',
  });
}

// ---------------------------------------------------------------------------------------------
// initialized

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

async function start(ctx: ActionContext, pgdata: string, input: PostgresInput, waitMs: number, found: HostFacts): Promise<Outcome> {
  // The probe read PG_VERSION just now; only a probe that found none is worth a second look.
  if (!found.pgdata_present && (await readPgVersion(ctx, pgdata)) === undefined) throw noCluster(ctx.host, pgdata);
  const facts = await changeThenRead(ctx, (onDone) => startServer(ctx, pgdata, { command: 'start', waitMs, logFile: input.log_file, onReady: onDone }), () => probeAfterChange(ctx));
  return { changed: true, msg: `started (pid ${facts.pid ?? '?'}${facts.in_recovery ? ', in recovery' : ''})`, data: stateData(facts), facts };
}

async function restart(ctx: ActionContext, pgdata: string, input: PostgresInput, waitMs: number, running: HostFacts): Promise<Outcome> {
  const facts = await changeThenRead(
    ctx,
    (onDone) => startServer(ctx, pgdata, { command: 'restart', waitMs, logFile: input.log_file, mode: input.mode, running, onReady: onDone }),
    () => probeAfterChange(ctx),
  );
  return {
    changed: true,
    msg: `restarted${input.reason ? ` (${input.reason})` : ''} (mode ${input.mode ?? 'fast'}, pid ${facts.pid ?? '?'})`,
    data: stateData(facts),
    facts,
  };
}

/**
 * A start, restart or stop, and the read of the server after it. The read begins as soon as the change is
 * done, where that is seen before its command returns (pg_ctl -w notices it only at its next look, up to
 * 100 ms later: postmaster-watch.ts), and the command is still awaited: its failure fails the step. The
 * read has ended when this returns or throws.
 */
async function changeThenRead<T>(ctx: ActionContext, change: (onDone: () => void) => Promise<unknown>, readServer: () => Promise<T>): Promise<T> {
  let reading: Promise<T> | undefined;
  const read = (): Promise<T> => {
    if (!reading) {
      // The change is over; what follows only reads the server it changed (ServerContext.changeEnded).
      ctx.changeEnded?.();
      reading = readServer();
      // Awaited below, after the command, whose failure comes first.
      reading.catch(() => undefined);
    }
    return reading;
  };
  try {
    await change(() => void read());
  } catch (e) {
    await reading?.catch(() => undefined);
    throw e;
  }
  return read();
}

/**
 * Stopping is refused for a primary unless allow_primary, and for a server whose PGDATA is another
 * inventory host's (a drill host pointed at the primary's directory). A read-write server stopped on
 * purpose (allow_primary) must also hold the inventory's cluster: a drill's kept copy or the fenced
 * primary, never an unrelated server that happens to live at this path.
 */
async function guardStop(ctx: ActionContext, pgdata: string, facts: HostFacts, input: PostgresInput, standbyIdentity?: Promise<() => unknown>): Promise<void> {
  if (input.replace === true && input.allow_primary !== true && facts.in_recovery === false && ctx.host.role !== 'primary') {
    // A host being rebuilt: its read-write server may be stopped only when it is another cluster without
    // user data (a freshly installed host); the inventory's cluster read-write is a primary, refused below.
    const examined = await guardDestruction(ctx, { verb: 'stop the server of', path: pgdata, cluster: true, replace: true, replaceSysid: input.replace_sysid || undefined });
    if (examined.replacing) return;
  }
  guardPrimaryStop(ctx.host, facts, input);
  // A server the probe found in recovery needs only which directory each PGDATA is: the read that went out
  // beside the probe for exactly that (probeGuardedStop). Any other (a primary, an unknown state) compares
  // the cluster too, read now.
  if (facts.in_recovery === true && standbyIdentity) (await standbyIdentity)();
  else await guardDestruction(ctx, stopIdentityRequest(pgdata, facts.in_recovery !== true));
}

function stopIdentityRequest(pgdata: string, cluster: boolean): DestructionRequest {
  return { verb: 'stop the server of', path: pgdata, cluster };
}

/**
 * The server a stop is about, probed, and guardStop passed on it when it runs. A standby's stop (what the
 * run's facts say this host is: a standby build's, a rebuild's) is guarded by which directory each PGDATA
 * is, nothing of the cluster: that read goes out beside the probe instead of after it (~15 ms of every
 * standby build), and stands only where the probe finds the server in recovery. A refusal it meets counts
 * only then: a server found stopped needs no guard, a primary is refused or read again as before. Either
 * way the read has ended when this returns or throws: nothing of it runs on behind the step.
 */
async function probeGuardedStop(ctx: ActionContext, pgdata: string, input: PostgresInput): Promise<HostFacts> {
  const expected = ctx.facts;
  const standbyIdentity =
    expected?.running === true && expected.in_recovery === true ? outcomeLater(guardDestruction(ctx, stopIdentityRequest(pgdata, false))) : undefined;
  try {
    const facts = await probe(ctx);
    if (facts.running) await guardStop(ctx, pgdata, facts, input, standbyIdentity);
    return facts;
  } finally {
    await standbyIdentity;
  }
}

/**
 * A promise that never rejects, of a function that returns the value or throws the error `promise` ended
 * with: what it found is taken (and its refusal thrown) only where it counts, and where it does not, no
 * rejection is left unhandled.
 */
function outcomeLater<T>(promise: Promise<T>): Promise<() => T> {
  return promise.then(
    (value) => () => value,
    (error: unknown) => () => {
      throw error;
    },
  );
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
  // The server as the stop left it, read by the action while pg_ctl still waits (postmaster-watch.ts) rather
  // than by the engine after the step. pg_ctl's exit is the verdict: a read that failed, or that does not show
  // a stopped server, is not kept, and the engine reads the server after the step as it does without one.
  const read = await changeThenRead(ctx, (onDone) => stopServer(ctx, pgdata, mode, waitMs, onDone), () => probe(ctx).catch(() => undefined));
  const stopped = read && read.reachable && !read.error && read.pgdata_present === true && read.running === false;
  return { changed: true, msg: `stopped (mode ${mode})`, data: { running: false }, ...(stopped ? { facts: read } : {}) };
}

// ---------------------------------------------------------------------------------------------
// reloaded

async function reload(ctx: ActionContext, pgdata: string): Promise<Outcome> {
  await reloadServer(ctx, pgdata);
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
  const started = Date.now();
  const facts = await promoteServer(ctx, pgdata, waitMs);
  return {
    changed: true,
    msg: `promoted ${ctx.host.name}: timeline ${before.timeline ?? '?'} -> ${facts.timeline ?? '?'}`,
    data: { in_recovery: false, timeline: facts.timeline, previous_timeline: before.timeline, duration_ms: Date.now() - started },
    facts,
  };
}
