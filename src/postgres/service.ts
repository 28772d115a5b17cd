/**
 * Start, stop, restart, reload and promote through the host's service manager (inventory
 * `postgres.service`): pg_ctl, Debian's pg_ctlcluster, or systemd. Every action that starts or stops a
 * server goes through here, so the service manager's view stays true: after pg_ctlcluster acts,
 * pg_lsclusters says what happened; under systemd a server running outside its unit is refused, since
 * `systemctl stop` would leave it running while pgplay reported it stopped.
 *
 * The argv of each manager is built by serviceArgv (pure, unit-tested); systemd has no promote verb, so
 * a promotion under systemd is pg_ctl promote (the unit keeps tracking the same postmaster).
 */
import { PgplayError, tailLines } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { ServerContext } from './server-context.js';
import type { HostFacts } from '../model/facts.js';
import type { Host, ServiceManager } from '../model/inventory.js';
import { commandFailed, pgBin, runAsOwner } from './owner.js';
import { awaitOutOfRecovery, pgCtlPromote, pgCtlReload, pgCtlStart, pgCtlStop, waitSeconds, type StartOptions, type StopMode } from './pg-ctl.js';
import { probe } from './probe.js';
import { defaultLogFile, LOG_TAIL_LINES, logSince, logSize } from './server-log.js';
import { shQuote } from '../transports/quote.js';

export type ServiceVerb = 'start' | 'stop' | 'restart' | 'reload' | 'promote';

export function serviceOf(host: Host): ServiceManager {
  return host.postgres.service ?? 'pg_ctl';
}

/** One command of a service operation, and whom it runs as. */
export interface ServiceCommand {
  argv: string[];
  /** root runs systemctl; everything else runs as the cluster's OS user. */
  as: 'owner' | 'root';
}

/**
 * The commands a verb runs under pg_ctlcluster or systemd (pg_ctl itself is pg-ctl.ts). Stop modes:
 * pg_ctlcluster -m; systemd stops fast (`systemctl stop`: the units of Debian and PGDG both shut down in
 * fast mode) and reaches smart and immediate by signalling the postmaster as PostgreSQL defines them
 * (SIGTERM smart, SIGQUIT immediate) through `systemctl kill --kill-who=main`, so the unit sees its main
 * process end. A restart in another mode than fast is that stop, then a start.
 */
export function serviceArgv(host: Host, verb: ServiceVerb, o: { mode?: StopMode; waitMs: number }): ServiceCommand[] {
  const service = serviceOf(host);
  const mode = o.mode ?? 'fast';
  const wait = waitSeconds(o.waitMs);
  if (service === 'pg_ctlcluster') {
    const cluster = [String(host.postgres.version), host.postgres.cluster ?? 'main'];
    // Options after -- go to pg_ctl: the step's wait instead of pg_ctlcluster's own.
    switch (verb) {
      case 'start':
        return [{ argv: ['pg_ctlcluster', ...cluster, 'start', '--', '-t', wait], as: 'owner' }];
      case 'stop':
      case 'restart':
        return [{ argv: ['pg_ctlcluster', '-m', mode, ...cluster, verb, '--', '-t', wait], as: 'owner' }];
      case 'reload':
        return [{ argv: ['pg_ctlcluster', ...cluster, 'reload'], as: 'owner' }];
      case 'promote':
        return [{ argv: ['pg_ctlcluster', ...cluster, 'promote', '--', '-w', '-t', wait], as: 'owner' }];
    }
  }
  if (service === 'systemd') {
    const unit = host.postgres.serviceUnit ?? `postgresql-${host.postgres.version}`;
    const signal = mode === 'smart' ? 'SIGTERM' : 'SIGQUIT';
    const stop: ServiceCommand =
      mode === 'fast'
        ? { argv: ['systemctl', 'stop', unit], as: 'root' }
        : { argv: ['systemctl', 'kill', '--kill-who=main', `--signal=${signal}`, unit], as: 'root' };
    switch (verb) {
      case 'start':
        return [{ argv: ['systemctl', 'start', unit], as: 'root' }];
      case 'stop':
        return [stop];
      case 'restart':
        return mode === 'fast' ? [{ argv: ['systemctl', 'restart', unit], as: 'root' }] : [stop, { argv: ['systemctl', 'start', unit], as: 'root' }];
      case 'reload':
        return [{ argv: ['systemctl', 'reload', unit], as: 'root' }];
      case 'promote':
        // systemd has no promote verb: pg_ctl promote signals the postmaster the unit runs.
        return [{ argv: [pgBin(host, 'pg_ctl'), 'promote', '-D', host.pgdata ?? '', '-w', '-t', wait], as: 'owner' }];
    }
  }
  throw new PgplayError({ code: 'SEMANTIC', message: `${host.name}: service ${service} has no ${verb} command here (pg_ctl runs through pg-ctl.ts)` });
}

async function runServiceCommand(ctx: ServerContext, c: ServiceCommand) {
  if (c.as === 'owner') return runAsOwner(ctx, c.argv, { env: { LC_MESSAGES: 'C' } });
  const r = await ctx.transport.exec(c.argv, { become: 'root', env: { LC_MESSAGES: 'C' }, signal: ctx.signal, timeoutMs: ctx.timeoutMs });
  if (r.timedOut) throw new PgplayError({ code: 'TIMEOUT', message: `${c.argv.slice(0, 2).join(' ')} on ${ctx.host.name} timed out and was stopped` });
  return r;
}

/** What pg_lsclusters says about the host's Debian cluster, or undefined when it knows none by that name. */
export async function lsCluster(ctx: ServerContext): Promise<{ status: string; pgdata: string; logFile?: string } | undefined> {
  const pg = ctx.host.postgres;
  const r = await runAsOwner(ctx, ['pg_lsclusters', '-h'], { env: { LC_ALL: 'C' }, timeoutMs: 30_000 });
  if (r.exitCode !== 0) throw commandFailed(`pg_lsclusters on ${ctx.host.name} failed`, r);
  for (const line of r.stdout.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === String(pg.version) && f[1] === (pg.cluster ?? 'main')) return { status: f[3] ?? '', pgdata: f[5] ?? '', ...(f[6] ? { logFile: f[6] } : {}) };
  }
  return undefined;
}

/** systemctl is-active of the host's unit: active, inactive, failed, activating, ... */
export async function unitState(ctx: ServerContext): Promise<string> {
  const unit = ctx.host.postgres.serviceUnit!;
  const r = await ctx.transport.exec(['systemctl', 'is-active', unit], { become: 'root', signal: ctx.signal, timeoutMs: 30_000 });
  return (r.stdout.trim() || r.stderr.trim() || `rc ${r.exitCode}`).split('\n')[0]!;
}

/**
 * Before acting: the service manager must be the one that runs this PGDATA. pg_ctlcluster must know
 * the cluster, with this data directory (else it would start another one, or none); under systemd a
 * running server must be the unit's (else stop and reload would not reach it).
 */
export async function checkServiceView(ctx: ServerContext, pgdata: string, facts: HostFacts): Promise<void> {
  const host = ctx.host;
  const service = serviceOf(host);
  if (service === 'pg_ctlcluster') {
    const c = await lsCluster(ctx);
    const name = `${host.postgres.version}/${host.postgres.cluster ?? 'main'}`;
    if (!c) {
      throw new PgplayError({
        code: 'GUARD',
        message: `pg_ctlcluster on ${host.name} knows no cluster ${name} (no ${host.postgres.configDir ?? `/etc/postgresql/${name}`}/postgresql.conf)`,
        expected: `a Debian cluster ${name} whose data directory is ${pgdata}`,
        hint: 'a cluster restored from a backup gets its configuration directory from standby-build.yml (step debian-config); or set postgres.service: pg_ctl',
      });
    }
    if (c.pgdata !== pgdata) {
      throw new PgplayError({
        code: 'GUARD',
        message: `pg_ctlcluster on ${host.name} runs cluster ${name} from ${c.pgdata}, but the inventory's pgdata is ${pgdata}`,
        expected: `data_directory = '${pgdata}' in ${host.postgres.configDir ?? `/etc/postgresql/${name}`}/postgresql.conf, or pgdata: ${c.pgdata}`,
      });
    }
  } else if (service === 'systemd' && facts.running) {
    const state = await unitState(ctx);
    if (state !== 'active' && state !== 'reloading') {
      throw new PgplayError({
        code: 'GUARD',
        message: `PostgreSQL on ${host.name} runs (pid ${facts.pid ?? '?'}) outside its systemd unit ${host.postgres.serviceUnit} (${state}): systemctl would not reach it`,
        hint: `stop it with pg_ctl stop -D ${pgdata} and let pgplay start it through the unit, or set postgres.service: pg_ctl for this host`,
      });
    }
  }
}

/** After acting: what the service manager says must match what pgplay reports. */
async function confirmServiceView(ctx: ServerContext, running: boolean): Promise<void> {
  const host = ctx.host;
  const service = serviceOf(host);
  const state = service === 'pg_ctlcluster' ? (await lsCluster(ctx))?.status ?? 'unknown' : service === 'systemd' ? await unitState(ctx) : undefined;
  if (state === undefined) return;
  // pg_lsclusters adds ",recovery" for a standby (online,recovery / down,recovery).
  const ok = running ? state.startsWith('online') || state === 'active' : state.startsWith('down') || state === 'inactive' || state === 'failed';
  if (!ok) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `${service} on ${host.name} reports the server ${state} after pgplay ${running ? 'started' : 'stopped'} it`,
      hint: service === 'pg_ctlcluster' ? 'pg_lsclusters shows what Debian sees' : `systemctl status ${host.postgres.serviceUnit}`,
    });
  }
}

/** The lines a manager's failed start wrote to the server log (the layout's log file), else its own output. */
async function failedStart(ctx: ServerContext, argv: string[], r: { exitCode: number; stdout: string; stderr: string }, log: string | undefined, before: number): Promise<PgplayError> {
  const lines = log ? tailLines(await logSince(ctx, log, before), LOG_TAIL_LINES) : [];
  const own = tailLines(r.stderr || r.stdout, LOG_TAIL_LINES);
  const shown = lines.length ? lines : own;
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `PostgreSQL did not start on ${ctx.host.name} (${argv.slice(0, 2).join(' ')}, rc ${r.exitCode})${shown.length ? `:\n${shown.join('\n')}` : ''}`,
    hint: log ? `the server log is ${log}` : undefined,
    command: { argv, rc: r.exitCode, stderrTail: shown },
  });
}

/** start or restart, waiting until the server accepts connections; the failure names the log's lines. */
export async function startServer(ctx: ServerContext, pgdata: string, o: StartOptions): Promise<void> {
  if (serviceOf(ctx.host) === 'pg_ctl') return pgCtlStart(ctx, pgdata, o);
  if (o.logFile !== undefined) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `postgres: log_file does not apply to ${ctx.host.name}: ${serviceOf(ctx.host)} decides where the server logs`,
      expected: 'log_file only with postgres.service: pg_ctl',
    });
  }
  const log = ctx.host.postgres.logFile;
  const before = log ? await logSize(ctx, log) : 0;
  for (const c of serviceArgv(ctx.host, o.command, o)) {
    ctx.log(c.argv.join(' '));
    const r = await runServiceCommand(ctx, c);
    if (r.exitCode !== 0) throw await failedStart(ctx, c.argv, r, log, before);
  }
  await confirmServiceView(ctx, true);
}

/** Stops the server and waits until it is gone; onGone as pgCtlStop's (pg_ctl only). */
export async function stopServer(ctx: ServerContext, pgdata: string, mode: StopMode, waitMs: number, onGone?: () => void): Promise<void> {
  if (serviceOf(ctx.host) === 'pg_ctl') return pgCtlStop(ctx, pgdata, mode, waitMs, onGone);
  for (const c of serviceArgv(ctx.host, 'stop', { mode, waitMs })) {
    ctx.log(c.argv.join(' '));
    const r = await runServiceCommand(ctx, c);
    if (r.exitCode !== 0) throw commandFailed(`${c.argv.slice(0, 2).join(' ')} stop on ${ctx.host.name} failed`, r);
  }
  // systemctl kill returns once the signal is sent: the server is stopped when its postmaster is gone.
  const deadline = Date.now() + waitMs;
  while ((await probe(ctx)).running) {
    if (Date.now() > deadline) throw new PgplayError({ code: 'STEP_FAILED', message: `PostgreSQL on ${ctx.host.name} still runs ${waitSeconds(waitMs)}s after the ${mode} stop` });
    await sleep(250, ctx.signal);
  }
  await confirmServiceView(ctx, false);
}

export async function reloadServer(ctx: ServerContext, pgdata: string): Promise<void> {
  if (serviceOf(ctx.host) === 'pg_ctl') return pgCtlReload(ctx, pgdata);
  for (const c of serviceArgv(ctx.host, 'reload', { waitMs: 60_000 })) {
    const r = await runServiceCommand(ctx, c);
    if (r.exitCode !== 0) throw commandFailed(`${c.argv.slice(0, 2).join(' ')} reload on ${ctx.host.name} failed`, r);
  }
}

/** Promotes and waits until SQL confirms the server left recovery. */
export async function promoteServer(ctx: ServerContext, pgdata: string, waitMs: number): Promise<HostFacts> {
  if (serviceOf(ctx.host) === 'pg_ctl') return pgCtlPromote(ctx, pgdata, waitMs);
  const started = Date.now();
  for (const c of serviceArgv(ctx.host, 'promote', { waitMs })) {
    const r = await runServiceCommand(ctx, c);
    if (r.exitCode !== 0) throw commandFailed(`${c.argv[0]} promote on ${ctx.host.name} failed`, r);
  }
  return awaitOutOfRecovery(ctx, started, waitMs, `${serviceOf(ctx.host)} promote`);
}

/** The shell lines of a verb through the host's service manager, as the break-glass export writes them. */
export function serviceShell(host: Host, pgdata: string, verb: ServiceVerb, o: { mode?: StopMode; waitMs: number }): string[] {
  const line = (argv: string[], as: 'owner' | 'root') => {
    const text = argv.map(shellWord).join(' ');
    return as === 'owner' && host.postgres.osUser !== 'root' ? `runuser -u ${shellWord(host.postgres.osUser)} -- ${text}` : text;
  };
  if (serviceOf(host) !== 'pg_ctl') return serviceArgv(host, verb, o).map((c) => line(c.argv, c.as));
  const pgCtl = [pgBin(host, 'pg_ctl'), verb, '-D', pgdata];
  const wait = ['-w', '-t', waitSeconds(o.waitMs)];
  if (verb === 'reload') return [line(pgCtl, 'owner')];
  if (verb === 'stop') return [line([...pgCtl, '-m', o.mode ?? 'fast', ...wait], 'owner')];
  if (verb === 'promote') return [line([...pgCtl, ...wait], 'owner')];
  const log = host.postgres.logFile ?? defaultLogFile(pgdata);
  return [line([...pgCtl, '-l', log, ...wait, ...(verb === 'restart' ? ['-m', o.mode ?? 'fast'] : [])], 'owner')];
}

/** A shell command that succeeds when the host's server runs (pg_ctl status, pg_ctlcluster status or the unit). */
export function statusShell(host: Host, pgdata: string): string {
  const service = serviceOf(host);
  if (service === 'systemd') return `systemctl is-active --quiet ${shellWord(host.postgres.serviceUnit ?? `postgresql-${host.postgres.version}`)}`;
  const argv = service === 'pg_ctlcluster' ? ['pg_ctlcluster', String(host.postgres.version), host.postgres.cluster ?? 'main', 'status'] : [pgBin(host, 'pg_ctl'), 'status', '-D', pgdata];
  const text = argv.map(shellWord).join(' ');
  return host.postgres.osUser !== 'root' ? `runuser -u ${shellWord(host.postgres.osUser)} -- ${text}` : text;
}

function shellWord(value: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(value) ? value : shQuote(value);
}

/** The command a person types to stop a host's server (fast) through its service manager, for hints. */
export function stopCommandText(host: Host): string {
  const service = serviceOf(host);
  if (service === 'pg_ctl') return `${pgBin(host, 'pg_ctl')} stop -m fast -D ${host.pgdata} (as ${host.postgres.osUser})`;
  return serviceArgv(host, 'stop', { mode: 'fast', waitMs: 60_000 })[0]!.argv.slice(0, service === 'systemd' ? undefined : -3).join(' ') +
    (service === 'pg_ctlcluster' ? ` (as ${host.postgres.osUser})` : '');
}
