import { connect } from 'node:net';
import type { QueryConfig } from 'pg';
import { parseDuration } from '../core/duration.js';
import { PgplayError } from '../core/errors.js';
import { sleep } from '../core/sleep.js';
import type { Host } from '../model/inventory.js';
import { ServerWatch } from '../postgres/server-watch.js';
import { commandLine, inlineParams, psqlLine, sqlLiteral, word } from './shell-export.js';
import { isReadOnlyQuery } from './sql.js';
import type { Action, ActionContext } from './types.js';

export interface WaitInput {
  /** A query whose first value becomes true. */
  sql?: string;
  params?: unknown[];
  database?: string;
  /** A TCP port on the host's address accepts connections (from where pgplay runs). */
  port?: number;
  /** The server accepts connections (pg_isready on the host). */
  postgres?: 'ready';
  /** On a primary: this standby (its application_name, by default its host name) is streaming. */
  streaming?: string;
  /** On a standby: replay reached this LSN, or the primary's current LSN taken when the wait starts. */
  replayed?: { lsn?: string; from?: string };
  /** pg_is_in_recovery() equals this (false after a promotion, true for a standby). */
  in_recovery?: boolean;
  timeout?: string | number;
  interval?: string | number;
  /**
   * The file this host's server writes its log to when the server's own settings and process cannot tell
   * (it is no longer running): the file the start that precedes the wait gave pg_ctl -l.
   */
  log?: string;
}

type Probe = () => Promise<{ met: boolean; detail: string }>;

const CONDITIONS = ['sql', 'port', 'postgres', 'streaming', 'replayed', 'in_recovery'] as const;

/** Polls a read-only condition until it holds or the timeout passes. Never changes anything. */
export const waitAction: Action<WaitInput> = {
  name: 'wait',
  connects: true,
  // Waits only.
  changes: [],
  summary: 'Waits until a condition holds: SQL returns true, a port opens, PostgreSQL is ready, a standby streams, an LSN is replayed.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      sql: { type: 'string', description: 'A read-only query whose first value must become true.' },
      params: { type: 'array' },
      database: { type: 'string', default: 'postgres' },
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'TCP port on the host address.' },
      postgres: { enum: ['ready'], description: 'pg_isready succeeds on the host.' },
      streaming: { type: 'string', description: 'On a primary: the standby (application_name) that must be streaming.' },
      replayed: {
        type: 'object',
        additionalProperties: false,
        properties: {
          lsn: { type: 'string', pattern: '^[0-9A-Fa-f]+/[0-9A-Fa-f]+$' },
          from: { type: 'string', description: 'Host whose current WAL LSN must be replayed here.' },
        },
      },
      in_recovery: { type: 'boolean' },
      timeout: { type: ['string', 'number'], default: '60s' },
      interval: { type: ['string', 'number'], default: '1s', description: 'The longest delay between two probes: the first comes after 20 ms, each next one after twice the last, up to this. The servers a wait watches are read at this interval too, but at most once a second.' },
      log: {
        type: 'string',
        minLength: 1,
        description:
          "The host's server log, quoted when its server stops or the wait times out, where the server's settings (logging_collector) and process cannot tell: give the file the start before the wait wrote to (postgres: log_file, pg_ctl -l), or a server that exits before the wait begins is quoted from the layout's log file, else <pgdata>/log/pgplay-startup.log.",
      },
    },
    oneOf: CONDITIONS.map((c) => ({ required: [c] })),
  },
  // Every probe reads; a `sql:` one only when the query is read-only by sql's own conservative rules.
  readOnly: (input) => input.sql === undefined || isReadOnlyQuery(input.sql),
  async check(ctx, input) {
    // Check mode runs nothing that could write: a probe query sql would not call read-only waits for the real run.
    if (ctx.checkMode && !waitAction.readOnly!(input)) return { changed: false, msg: 'would wait (the query is not read-only: not run under plan)' };
    const timeoutMs = parseDuration(input.timeout ?? '60s', 'timeout');
    const intervalMs = parseDuration(input.interval ?? '1s', 'interval');
    const deadline = Date.now() + timeoutMs;
    const probe = await probeFor(ctx, input, deadline);
    if (ctx.checkMode) {
      const now = await probe();
      return { changed: false, msg: now.met ? `holds: ${now.detail}` : `not yet: ${now.detail} (would wait)` };
    }
    // Probed before anything else: a condition that already holds (a standby streaming by the time the
    // steps before it are done) needs no watch, whose start reads each server's log location and state.
    let last = await probe();
    if (last.met) return met(last);
    const delays = pollDelays(intervalMs);
    let watch: ServerWatch | undefined;
    let watching = false;
    let waited = 0;
    // A wait for readiness watches at the first miss: its server may not be running yet when the wait
    // begins (mustRun is off), so only a watch that saw it alive can tell that it died.
    const watchAfter = input.postgres === 'ready' ? 0 : WATCH_AFTER_MS;
    let watched = Number.NEGATIVE_INFINITY;
    for (;;) {
      // Nor does one (but a readiness wait) that holds within its first second: the watch only explains a
      // wait that lasts, and starting it at the first miss (a process per server to find its log, one to
      // read it) took CPU from the very server being waited for. A server already gone is still found then
      // (the watch's mustRun).
      if (!watching && waited >= watchAfter && !ctx.signal.aborted) {
        watch = await watchFor(ctx, input);
        watching = true;
      }
      // The servers are read at the wait's own interval, however fast the condition is polled, and at
      // most once a second: a log read is a process per server, a probe a query on an open connection.
      if (watch && Date.now() - watched >= Math.max(intervalMs, WATCH_EVERY_MS)) {
        await watch.check(last.detail);
        watched = Date.now();
      }
      const delay = delays();
      if (Date.now() + delay > deadline || ctx.signal.aborted) break;
      await sleep(delay, ctx.signal);
      waited += delay;
      last = await probe();
      if (last.met) return met(last);
    }
    // A wait that timed out before its watch began still reads its servers: one gone meanwhile fails it as
    // gone, the others' logs are quoted (their last lines: the watch saw nothing come in).
    if (!watching && !ctx.signal.aborted) {
      watch = await watchFor(ctx, input, true).catch(() => undefined);
      await watch?.check(last.detail);
    }
    const logs = ctx.signal.aborted ? '' : ((await watch?.report()) ?? '');
    throw new PgplayError({
      code: 'TIMEOUT',
      message: `condition not met after ${input.timeout ?? '60s'}: ${last.detail}${logs ? `\n${logs}` : ''}`,
    });
  },
  async apply() {
    return { changed: false };
  },
  // A polling loop with the same timeout: the condition is for when the script runs, not the plan.
  async exportShell(ctx, input) {
    const timeout = Math.ceil(parseDuration(input.timeout ?? '60s', 'timeout') / 1000);
    const interval = Math.max(1, Math.ceil(parseDuration(input.interval ?? '1s', 'interval') / 1000));
    const condition = shellCondition(ctx, input);
    return {
      runAlways: true,
      comments: [`until: ${condition.what} (at most ${timeout}s)`],
      commands: [
        `deadline=$(( $(date +%s) + ${timeout} ))`,
        `until ${condition.test}; do`,
        `  if [ "$(date +%s)" -ge "$deadline" ]; then echo ${word(`condition not met after ${timeout}s: ${condition.what}`)} >&2; exit 1; fi`,
        `  sleep ${interval}`,
        'done',
      ],
    };
  },
};

const met = (probed: { detail: string }) => ({ changed: false, msg: probed.detail, data: { detail: probed.detail } });

/**
 * How long (the delays between its probes, added up) a wait polls its condition before it watches the
 * servers it depends on (server-watch.ts): a standby that dies at start is reported a second later than
 * at the first miss, and a wait that holds within that second never pays for the watch.
 */
export const WATCH_AFTER_MS = 1000;

/** The shortest time between two reads of the watched servers, whatever the wait's interval. */
export const WATCH_EVERY_MS = 1000;

/** The first delay between two probes. */
export const FIRST_POLL_MS = 20;

/**
 * The delays between probes: 20 ms at first, doubling up to the wait's interval. A condition usually
 * holds within moments of the step before it (a started standby connects to its upstream in tens of
 * milliseconds), and a probe at the full interval made every wait cost up to that interval for nothing;
 * a condition that takes long is still polled at the interval after a few fast probes.
 */
export function pollDelays(intervalMs: number): () => number {
  let next = Math.min(FIRST_POLL_MS, intervalMs);
  return () => {
    const delay = next;
    next = Math.min(next * 2, intervalMs);
    return delay;
  };
}

/** The wait's condition as a shell test: a psql query that must print t, or pg_isready. */
function shellCondition(ctx: ActionContext, input: WaitInput): { what: string; test: string } {
  const db = { database: input.database };
  const query = (sql: string) => `[ "$(${psqlLine(ctx.host, sql, db)} 2>/dev/null)" = t ]`;
  if (input.postgres === 'ready') {
    const h = ctx.host.postgres;
    return { what: 'the server accepts connections', test: commandLine(['pg_isready', '-q', '-h', h.socketDir, '-p', String(h.port)], h.osUser) };
  }
  if (input.sql !== undefined) {
    const sql = inlineParams(input.sql, input.params).replace(/\s+/g, ' ').trim();
    return { what: sql, test: query(`SELECT (${sql.replace(/;\s*$/, '')}) IS TRUE`) };
  }
  if (input.streaming !== undefined) {
    return {
      what: `${input.streaming} is streaming`,
      test: query(`SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = ${sqlLiteral(input.streaming)} AND state = 'streaming')`),
    };
  }
  if (input.in_recovery !== undefined) return { what: `pg_is_in_recovery() = ${input.in_recovery}`, test: query(`SELECT pg_is_in_recovery() = ${input.in_recovery}`) };
  if (input.replayed?.lsn) {
    return { what: `replayed ${input.replayed.lsn}`, test: query(`SELECT pg_last_wal_replay_lsn() >= ${sqlLiteral(input.replayed.lsn)}::pg_lsn`) };
  }
  throw new PgplayError({ code: 'USAGE', message: 'this wait (a TCP port, or replay up to another host\'s current LSN) is not exported' });
}

/**
 * The servers whose state explains this wait: the host's own, and for streaming the standby too (when
 * it is an inventory host). For streaming, a standby's error that keeps coming back ends the wait
 * early. Only a wait for readiness may begin while its server is down.
 */
async function watchFor(ctx: ActionContext, input: WaitInput, late = false): Promise<ServerWatch | undefined> {
  if (input.port !== undefined) return undefined;
  const hosts: Host[] = [ctx.host];
  const standby = input.streaming !== undefined ? ctx.hosts[input.streaming] : undefined;
  if (standby) hosts.unshift(standby);
  // Only streaming: a replay wait may run while the upstream is down on purpose (promote.yml's fence),
  // when the standby's failing reconnections are expected.
  return ServerWatch.start(ctx, hosts, {
    replication: input.streaming !== undefined,
    mustRun: input.postgres !== 'ready',
    logs: input.log !== undefined ? { [ctx.host.name]: input.log } : {},
    late,
  });
}

/** The least time a probe query is given, even when the wait's deadline is nearer. */
const MIN_QUERY_MS = 1000;

async function probeFor(ctx: ActionContext, input: WaitInput, deadline: number): Promise<Probe> {
  if (input.port !== undefined) return () => tcpOpen(ctx.host.address, input.port!);
  if (input.postgres === 'ready') return () => pgIsReady(ctx);
  // A server that does not answer (hung, stopped, a lock, a slow condition) must not hold the wait past
  // its timeout: opening a connection, checking a reused one and the query are each given what is left
  // of it. A connection whose query timed out is not reused (connection-pool.ts).
  const left = () => Math.max(MIN_QUERY_MS, deadline - Date.now());
  const query = async (text: string, values: unknown[] = [], hostName?: string) => {
    const client = await ctx.connectPostgres({ database: input.database, hostName, timeoutMs: left() });
    try {
      // pg honours query_timeout per query as well as per client; its types know only the client's.
      const config: QueryConfig & { query_timeout: number } = { text, values, query_timeout: left() };
      return (await client.query(config)).rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  // Connection failures while a server starts or restarts are "not yet", not errors.
  const guarded = (probe: Probe): Probe => async () => {
    try {
      return await probe();
    } catch (e) {
      return { met: false, detail: (e as Error).message };
    }
  };
  if (input.sql !== undefined) {
    return guarded(async () => {
      const rows = await query(input.sql!, input.params);
      const value = rows[0] ? Object.values(rows[0])[0] : undefined;
      return { met: value === true || value === 't', detail: `query returned ${JSON.stringify(value ?? null)}` };
    });
  }
  if (input.streaming !== undefined) {
    return guarded(async () => {
      const rows = await query('SELECT state FROM pg_stat_replication WHERE application_name = $1', [input.streaming]);
      const state = (rows[0]?.state as string | undefined) ?? 'not connected';
      return { met: state === 'streaming', detail: `${input.streaming} is ${state}` };
    });
  }
  if (input.in_recovery !== undefined) {
    return guarded(async () => {
      const rows = await query('SELECT pg_is_in_recovery() AS r');
      const value = rows[0]?.r as boolean;
      return { met: value === input.in_recovery, detail: `pg_is_in_recovery() = ${value}` };
    });
  }
  if (input.replayed) {
    let target = input.replayed.lsn;
    if (!target && input.replayed.from) {
      const rows = await query('SELECT pg_current_wal_lsn()::text AS lsn', [], input.replayed.from);
      target = rows[0]!.lsn as string;
    }
    if (!target) throw new PgplayError({ code: 'SCHEMA', message: 'wait.replayed needs lsn or from' });
    return guarded(async () => {
      const rows = await query(
        'SELECT pg_last_wal_replay_lsn()::text AS replayed, pg_last_wal_replay_lsn() >= $1::pg_lsn AS met',
        [target],
      );
      return { met: rows[0]?.met === true, detail: `replayed ${rows[0]?.replayed ?? 'nothing'} of ${target}` };
    });
  }
  throw new PgplayError({ code: 'SCHEMA', message: 'wait needs one condition', expected: CONDITIONS.join(', ') });
}

function tcpOpen(address: string, port: number): Promise<{ met: boolean; detail: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 2000 });
    const done = (met: boolean, why: string) => {
      socket.destroy();
      resolve({ met, detail: `${address}:${port} ${why}` });
    };
    socket.once('connect', () => done(true, 'accepts connections'));
    socket.once('timeout', () => done(false, 'timed out'));
    socket.once('error', (e: NodeJS.ErrnoException) => done(false, e.code ?? e.message));
  });
}

async function pgIsReady(ctx: ActionContext): Promise<{ met: boolean; detail: string }> {
  const pg = ctx.host.postgres;
  const res = await ctx.transport.exec([`${pg.bindir}/pg_isready`, '-h', pg.socketDir, '-p', String(pg.port)], {
    timeoutMs: 10_000,
  });
  return { met: res.exitCode === 0, detail: (res.stdout || res.stderr).trim() || `pg_isready exited ${res.exitCode}` };
}

export default waitAction;
