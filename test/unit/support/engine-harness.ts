import type { Client } from 'pg';
import type { Action } from '../../../src/actions/types.js';
import type { ActionContext } from '../../../src/engine/action.js';
import { Redactor } from '../../../src/core/redact.js';
import type { RunEvent } from '../../../src/engine/events.js';
import type { EngineDeps, EngineOptions } from '../../../src/engine/run-context.js';
import { gatherFacts } from '../../../src/engine/facts.js';
import { startRun } from '../../../src/engine/start.js';
import { executeRun } from '../../../src/engine/run.js';
import { unknownFacts, type HostFacts } from '../../../src/model/facts.js';
import type { Host, Role } from '../../../src/model/inventory.js';
import type { Playbook, Step } from '../../../src/model/playbook.js';
import { bareRun } from './bare-run.js';
import { FakeTransport, type FakeCall, type FakeExecHandler } from '../../../src/transports/fake.js';

/** Minimal idempotent actions over the fake transport, so engine tests control every outcome. */
export const touchAction: Action<{ path: string; content?: string }> = {
  name: 'touch',
  summary: 'test: ensure a file exists with content',
  schema: { type: 'object', required: ['path'], properties: { path: { type: 'string' }, content: { type: 'string' } } },
  async check(ctx, input) {
    const current = await ctx.transport.readFile(input.path);
    const wanted = input.content ?? '';
    return current?.toString() === wanted ? { changed: false } : { changed: true, diff: `+${wanted}` };
  },
  async apply(ctx, input) {
    await ctx.transport.writeFile(input.path, input.content ?? '');
    return { changed: true, data: { path: input.path } };
  },
};

export const runAction: Action<{ argv: string[] }> = {
  name: 'run',
  summary: 'test: run argv',
  schema: { type: 'object', required: ['argv'], properties: { argv: { type: 'array', items: { type: 'string' } } } },
  async check() {
    return { changed: true, msg: 'would run' };
  },
  async apply(ctx, input) {
    const r = await ctx.transport.exec(input.argv, { timeoutMs: ctx.timeoutMs, signal: ctx.signal });
    if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}: ${r.stderr}`);
    return { changed: true, data: { stdout: r.stdout, rc: r.exitCode } };
  },
};

export const guardAction: Action<{ refuse: boolean }> = {
  name: 'guarded',
  summary: 'test: destructive step behind a guard',
  schema: { type: 'object', properties: { refuse: { type: 'boolean' } } },
  destructive: () => true,
  async check(_ctx, input) {
    if (input.refuse) {
      const { PgplayError } = await import('../../../src/core/errors.js');
      throw new PgplayError({ code: 'GUARD', message: 'refusing: target is the live primary' });
    }
    return { changed: true };
  },
  async apply() {
    return { changed: true };
  },
};

/** Promotes the host: the fake server leaves recovery (promoted.add), as the engine's invariant sees it. */
export const promoted = new Set<string>();
export const promoteAction: Action<{ role?: 'promotes' | 'starts' }> = {
  name: 'promote',
  summary: 'test: a step that changes a role',
  schema: { type: 'object', properties: { role: { enum: ['promotes', 'starts'] } } },
  changesRole: (input) => input.role ?? 'promotes',
  async check() {
    return { changed: true };
  },
  async apply(ctx) {
    promoted.add(ctx.host.name);
    return { changed: true };
  },
};

/** A step whose check asks for confirmation under a key (as pending_restart and a primary's restart do). */
export const gateAction: Action<{ changes: boolean }> = {
  name: 'gate',
  summary: 'test: check asks for a keyed confirmation',
  schema: { type: 'object', properties: { changes: { type: 'boolean' } } },
  async check(ctx, input) {
    return { changed: input.changes, msg: 'would restart', confirm: { message: `restart ${ctx.host.name}`, key: 'restart' } };
  },
  async apply() {
    return { changed: true, msg: 'restarted' };
  },
};

export function host(name: string, role: Role = 'standby'): Host {
  return {
    name,
    address: '127.0.0.1',
    role,
    pgdata: `/pg/${name}`,
    postgres: { version: 15, bindir: '/usr/lib/postgresql/15/bin', port: 5432, osUser: 'postgres', superuser: 'postgres', socketDir: '/tmp', settings: {}, hba: [] },
    connection: { transport: 'local' },
    vars: {},
  };
}

/**
 * The context of one action called directly, outside the engine: check mode, a fake transport (the
 * host's, unless given), no server to connect to. A test overrides what its action reads.
 */
export function actionContext(over: Partial<ActionContext> = {}): ActionContext {
  const h = over.host ?? host('db2');
  const t = over.transport ?? new FakeTransport(h.name);
  return {
    step: { id: 's', name: 's' },
    host: h,
    hosts: { db1: host('db1', 'primary'), [h.name]: h },
    inventory: { cluster: 'main', postgres: { version: 15 }, hosts: {} } as never,
    transport: t,
    transportFor: () => t,
    facts: { reachable: true } as never,
    factsOf: async () => ({ reachable: true }) as never,
    factsIfRead: () => ({ reachable: true }) as never,
    withFacts: async (evaluate) => evaluate(),
    checkMode: true,
    diff: false,
    signal: new AbortController().signal,
    redactor: new Redactor(),
    renderTemplate: async () => '',
    secret: async () => undefined,
    connectPostgres: async () => {
      throw new Error('no server');
    },
    scope: () => ({}),
    log: () => undefined,
    playbookDir: '/',
    ...over,
  };
}

export interface Harness {
  events: RunEvent[];
  calls: FakeCall[];
  transports: Map<string, FakeTransport>;
  run(
    playbook: Partial<Playbook> & { steps: Step[] },
    options?: Partial<EngineOptions>,
    extra?: { signal?: AbortSignal; ask?: (q: string) => Promise<boolean>; params?: Record<string, unknown> },
  ): ReturnType<typeof executeRun>;
}

export function harness(
  hostNames: string[],
  handler?: FakeExecHandler,
  latencyMs = 0,
  unreachable: string[] = [],
  /** What facts say about a host's server (default: running read-write). */
  serverState?: (host: string) => Partial<HostFacts>,
  /** Real actions to run besides the test ones (e.g. postgres, over the fake transport), and changes to the hosts. */
  extra: {
    actions?: Action<any>[];
    configure?: (host: Host) => void;
    includes?: Record<string, Playbook>;
    /** Gather facts with the real facts script over the fake transport (the handler answers it), as runs do. */
    realFacts?: boolean;
    /** What connecting to PostgreSQL gives (default: an error, engine tests have no server). */
    connectPostgres?: (hostName: string) => Promise<Client>;
    /** Start as runs do (engine/start.ts gathers the facts the run needs) instead of reading every host's facts first. */
    start?: boolean;
    /** Facts read another way (e.g. held back until the test lets them through). */
    gatherFacts?: EngineDeps['gatherFacts'];
    /** What loading the PostgreSQL client does (EngineDeps.prepareConnections). */
    prepareConnections?: EngineDeps['prepareConnections'];
  } = {},
): Harness {
  const setup = extra;
  const calls: FakeCall[] = [];
  const transports = new Map<string, FakeTransport>();
  const events: RunEvent[] = [];
  const hosts: Record<string, Host> = {};
  hostNames.forEach((n, i) => (hosts[n] = host(n, i === 0 ? 'primary' : 'standby')));
  Object.values(hosts).forEach((h) => extra.configure?.(h));
  const includes = extra.includes ?? {};
  const actions = new Map([touchAction, runAction, guardAction, promoteAction, gateAction, ...(extra.actions ?? [])].map((a) => [a.name, a as Action<any>]));
  return {
    events,
    calls,
    transports,
    async run(pb, options = {}, extra = {}) {
      const playbook: Playbook = { name: 'test', ...pb };
      const run = bareRun(
        hosts,
        {
          getAction: (name) => actions.get(name),
          // Transports outlive a run so a second run sees what the first one wrote.
          createTransport: (h) => {
            let t = transports.get(h.name);
            if (!t) {
              t = new FakeTransport(h.name, handler, { calls, latencyMs });
              t.unreachable = unreachable.includes(h.name);
              transports.set(h.name, t);
            }
            return t;
          },
          gatherFacts: setup.gatherFacts ?? (setup.realFacts ? gatherFacts : async (_h, transport) => {
            try {
              await transport.connect();
              return { reachable: true, pgdata_present: true, running: true, in_recovery: false, ...serverState?.(_h.name) };
            } catch (e) {
              return unknownFacts((e as Error).message);
            }
          }),
          resolveSecret: async () => undefined,
          connectPostgres: async (_t, h) => {
            if (setup.connectPostgres) return setup.connectPostgres(h.name);
            throw new Error('no postgres in engine tests');
          },
          prepareConnections: setup.prepareConnections,
          ask: extra.ask,
          loadInclude: async (file) => {
            const included = includes[file];
            if (!included) throw new Error(`no included playbook ${file} in this test`);
            return included;
          },
        },
        playbook,
        { runId: 'test-run', params: extra.params, options: { diff: true, ...options }, signal: extra.signal, sink: (e) => events.push(e) },
      );
      const select = (pattern: string | string[]) => {
        const list = Array.isArray(pattern) ? pattern : [pattern];
        return hostNames.filter((n) => list.includes('all') || list.includes(n) || list.includes(hosts[n]!.role));
      };
      if (setup.start) await startRun(run, select, run.signal);
      else for (const name of hostNames) await run.refreshFacts(name);
      return executeRun(run, select);
    },
  };
}

export function results(events: RunEvent[]) {
  return events.filter((e): e is Extract<RunEvent, { type: 'step-result' }> => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}`);
}
