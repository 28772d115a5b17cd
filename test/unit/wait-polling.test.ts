/**
 * What a wait costs beyond its condition (issue 14): a condition that already holds is one probe and
 * nothing else (no watch of the server's log), a condition that holds soon is polled fast at first
 * (20 ms, doubling up to the wait's interval) instead of at the full interval from the first miss on, and
 * its servers are watched only once it has waited a second.
 * Counted: the commands the wait runs on the host and the delays it asks for (sleep answers at once
 * here), never the time it takes.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { Client } from 'pg';
import type { ExecResult } from '../../src/transports/types.js';

const delays: number[] = [];
/** Set by a test whose clock moves with the delays asked for (Date.now follows it). */
let clock: number | undefined;
vi.mock('../../src/core/sleep.js', () => ({
  sleep: async (ms: number) => {
    delays.push(ms);
    if (clock !== undefined) clock += ms;
  },
}));

const { waitAction, pollDelays } = await import('../../src/actions/wait.js');
const { FakeTransport } = await import('../../src/transports/fake.js');
const { testContext } = await import('./support/action-context.js');

/** A host whose server is up, with a query that becomes true at its `trueAt`-th run. */
function setUp(trueAt: number) {
  const transport = new FakeTransport('local1', (argv) => {
    // The watch: where the log is, then whether the postmaster lives and what the log gained.
    const script = argv[3] ?? '';
    if (script === 'pgplay-log-locate') return { stdout: '/pg/log/postgresql.log\n' };
    if (script === 'pgplay-log-poll') return { stdout: 'alive=1 size=0\n' };
    return { exitCode: 0 };
  });
  const ctx = testContext({ transport });
  let queries = 0;
  ctx.connectPostgres = async () =>
    ({
      query: async () => ({ rows: [{ ready: ++queries >= trueAt }] }),
      end: async () => undefined,
    }) as unknown as Client;
  return { ctx, transport, queries: () => queries };
}

beforeEach(() => {
  delays.length = 0;
  clock = undefined;
  vi.restoreAllMocks();
});

describe('wait: what it costs besides its condition', () => {
  it('a condition that holds at the first probe runs no command on the host (no watch of its server) and sleeps never', async () => {
    const { ctx, transport, queries } = setUp(1);
    const outcome = await waitAction.check(ctx, { sql: 'SELECT ready', interval: '500ms', timeout: '60s' });
    expect(outcome).toMatchObject({ changed: false, msg: 'query returned true' });
    expect(queries()).toBe(1);
    expect(transport.calls.filter((c) => c.kind === 'exec').map((c) => c.argv?.[3])).toEqual([]);
    expect(delays).toEqual([]);
  });

  it('a condition that holds at the fourth probe is polled after 20, 40 and 80 ms, not after the interval each time, and runs no command on the host', async () => {
    const { ctx, transport, queries } = setUp(4);
    const outcome = await waitAction.check(ctx, { sql: 'SELECT ready', interval: '60s', timeout: '10m' });
    expect(outcome.msg).toBe('query returned true');
    expect(queries()).toBe(4);
    expect(delays).toEqual([20, 40, 80]);
    // Held within its first second: its server was never watched (no process to locate and read its log).
    expect(transport.calls.filter((c) => c.kind === 'exec').map((c) => c.argv?.[3])).toEqual([]);
  });

  it('a condition that takes longer: the server is watched once the delays add up to a second, then at the interval', async () => {
    const { ctx, transport, queries } = setUp(9);
    const outcome = await waitAction.check(ctx, { sql: 'SELECT ready', interval: '60s', timeout: '10m' });
    expect(outcome.msg).toBe('query returned true');
    expect(queries()).toBe(9);
    expect(delays).toEqual([20, 40, 80, 160, 320, 640, 1280, 2560]);
    // 20 + … + 640 = 1260 ms: before the seventh delay its log is located, its end read, and the server read
    // once; the next read is due a whole interval later.
    expect(transport.calls.filter((c) => c.kind === 'exec').map((c) => c.argv?.[3])).toEqual(['pgplay-log-locate', 'pgplay-log-poll', 'pgplay-log-poll']);
  });

  it('a fast interval polls the condition at it, but reads the watched server at most once a second', async () => {
    clock = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => clock!);
    const { ctx, transport, queries } = setUp(40);
    const outcome = await waitAction.check(ctx, { sql: 'SELECT ready', interval: '100ms', timeout: '10m' });
    expect(outcome.msg).toBe('query returned true');
    expect(queries()).toBe(40);
    // 20, 40, 80, then 100 ms: 3740 ms in all.
    expect(delays.reduce((a, b) => a + b, 0)).toBe(3740);
    // Watched from 1040 ms on (its log located and its end read), then read at 1040, 2040 and 3040 ms.
    const ran = transport.calls.filter((c) => c.kind === 'exec').map((c) => c.argv?.[3]);
    expect(ran).toEqual(['pgplay-log-locate', 'pgplay-log-poll', 'pgplay-log-poll', 'pgplay-log-poll', 'pgplay-log-poll']);
  });

  it('a wait that times out before its watch began still quotes its server: the log is located and read then', async () => {
    const { ctx, transport } = setUp(Number.POSITIVE_INFINITY);
    const error = await waitAction.check(ctx, { sql: 'SELECT ready', interval: '100ms', timeout: '50ms' }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/^condition not met after 50ms: query returned false/);
    // Located, its end read (the start), read again (is it still running?), and read for the report.
    expect(transport.calls.filter((c) => c.kind === 'exec').map((c) => c.argv?.[3])).toEqual(['pgplay-log-locate', 'pgplay-log-poll', 'pgplay-log-poll', 'pgplay-log-poll']);
  });

  it('a streaming wait that misses for a second reads the standby and its upstream side by side, not one after the other', async () => {
    let inFlight = 0;
    let peak = 0;
    const transport = new FakeTransport('local1', async (argv) => {
      peak = Math.max(peak, ++inFlight);
      // Answered on a later turn of the event loop: a command issued meanwhile overlaps this one.
      await new Promise((r) => setImmediate(r));
      inFlight--;
      return { stdout: argv[3] === 'pgplay-log-locate' ? '/pg/log/postgresql.log\n' : 'alive=1 size=0\n' };
    });
    const ctx = testContext({ transport });
    const standby = { ...ctx.host, name: 'db2', pgdata: '/pg/db2', role: 'standby' as const };
    ctx.hosts = { ...ctx.hosts, db2: standby };
    ctx.transportFor = () => transport;
    let probes = 0;
    ctx.connectPostgres = async () =>
      ({ query: async () => ({ rows: [{ state: ++probes >= 8 ? 'streaming' : 'catchup' }] }), end: async () => undefined }) as unknown as Client;
    const outcome = await waitAction.check(ctx, { streaming: 'db2', interval: '60s', timeout: '10m' });
    expect(outcome.msg).toBe('db2 is streaming');
    // Located and read on both hosts (start), read once more on both (the first check).
    expect(transport.calls.filter((c) => c.kind === 'exec')).toHaveLength(6);
    expect(peak).toBe(2);
  });

  it('the delays double from 20 ms up to the interval and stay there; an interval under 20 ms is used as it is', () => {
    const next = pollDelays(500);
    expect(Array.from({ length: 7 }, next)).toEqual([20, 40, 80, 160, 320, 500, 500]);
    const short = pollDelays(5);
    expect([short(), short()]).toEqual([5, 5]);
  });
});

/**
 * A host whose server refuses every connection with `refused`; its commands (the watch's scripts by
 * their name, argv[3]) are answered by `answer`, the rest succeed with no output.
 */
function refusingHost(refused: Error, answer: (script: string, argv: string[]) => Partial<ExecResult> | undefined) {
  const transport = new FakeTransport('local1', (argv) => answer(argv[3] ?? '', argv) ?? { exitCode: 0 });
  const ctx = testContext({ transport });
  ctx.connectPostgres = async () => {
    throw refused;
  };
  return ctx;
}

describe('wait: a server that dies before the watch would begin', () => {
  /** A host whose server lives until `diesAt` ms of the wait's clock; its log says why it went. */
  function dying(diesAt: number) {
    clock = 1_000_000;
    const start = clock;
    vi.spyOn(Date, 'now').mockImplementation(() => clock!);
    const alive = () => clock! - start < diesAt;
    return refusingHost(Object.assign(new Error('the database system is starting up'), { code: '57P03' }), (script, argv) => {
      if (script === 'pgplay-log-locate') return { stdout: '/pg/log/postgresql.log\n' };
      if (script === 'pgplay-log-poll') return { stdout: `alive=${alive() ? 1 : 0} size=60\n${argv[6] === '-1' ? 'FATAL:  could not map anonymous shared memory\n' : ''}` };
      // pg_isready: "rejecting connections" (exit 1) while it starts, "no response" (exit 2) once gone.
      if (argv[0]!.endsWith('/pg_isready')) return alive() ? { exitCode: 1, stdout: '/pg/run:5432 - rejecting connections' } : { exitCode: 2, stdout: '/pg/run:5432 - no response' };
      return undefined;
    });
  }

  it('postgres: ready watches at its first miss: a server seen starting and then gone fails the wait, not its timeout', async () => {
    const error = await waitAction.check(dying(300), { postgres: 'ready', interval: '100ms', timeout: '60s' }).catch((e: Error) => e);
    expect((error as { code?: string }).code).toBe('STEP_FAILED');
    expect((error as Error).message).toContain('PostgreSQL on local1 is not running');
    expect((error as Error).message).toContain('FATAL:  could not map anonymous shared memory');
  });

  it('a wait that times out before its watch began reads its server then: one gone fails the wait as gone', async () => {
    const error = await waitAction.check(dying(300), { in_recovery: false, interval: '100ms', timeout: '800ms' }).catch((e: Error) => e);
    expect((error as { code?: string }).code).toBe('STEP_FAILED');
    expect((error as Error).message).toContain('PostgreSQL on local1 is not running');
    expect((error as Error).message).not.toContain('nothing new since');
  });

  it('a wait that times out before its watch began quotes the log\'s last lines as such', async () => {
    const error = await waitAction.check(dying(Number.POSITIVE_INFINITY), { in_recovery: false, interval: '100ms', timeout: '800ms' }).catch((e: Error) => e);
    expect((error as { code?: string }).code).toBe('TIMEOUT');
    expect((error as Error).message).toContain("local1's log (/pg/log/postgresql.log, its last lines):\nFATAL:  could not map anonymous shared memory");
  });
});

describe('wait: the log it quotes when the server is already gone', () => {
  // A restore's recovery that never reaches its target ends with FATAL, possibly before the wait's watch
  // begins: the server's process no longer names its log, so the watch reads the file the start wrote to.
  const logs: Record<string, string> = {
    '/pg/log/pgplay-recovery.log': 'LOG:  starting point-in-time recovery\nFATAL:  recovery ended before configured recovery target was reached\n',
  };
  function gone() {
    return refusingHost(Object.assign(new Error('connect ENOENT /pg/run/.s.PGSQL.5432'), { code: 'ENOENT' }), (script, argv) => {
      // LOCATE prints its fallback (argv[7]) when no collector is on and no postmaster names a file.
      if (script === 'pgplay-log-locate') return { stdout: `${argv[7]}\n` };
      if (script === 'pgplay-log-poll') {
        const text = logs[argv[5] ?? ''] ?? '';
        return { stdout: `alive=0 size=${text.length}\n${argv[6] === '-1' ? text : ''}` };
      }
      return undefined;
    });
  }

  it('with log: the FATAL line of that file, not the layout default', async () => {
    const error = await waitAction.check(gone(), { in_recovery: false, timeout: '1m', interval: '200ms', log: '/pg/log/pgplay-recovery.log' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('FATAL:  recovery ended before configured recovery target was reached');
    expect((error as Error).message).toContain('(/pg/log/pgplay-recovery.log)');
  });

  it('without log: the layout default is read (pgplay-startup.log), as before', async () => {
    const error = await waitAction.check(gone(), { in_recovery: false, timeout: '1m', interval: '200ms' }).catch((e: Error) => e);
    expect((error as Error).message).toContain('pgplay-startup.log');
    expect((error as Error).message).not.toContain('FATAL');
  });
});
