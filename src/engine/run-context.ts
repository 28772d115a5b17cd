import type { Client } from 'pg';
import type { Action } from './action.js';
import { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import { mergeFacts, unknownFacts, type FactArea, type HostFacts } from '../model/facts.js';
import type { Host, Inventory } from '../model/inventory.js';
import { INCLUDE_KEY, type Playbook, type Step } from '../model/playbook.js';
import { ConnectionPool } from '../postgres/connection-pool.js';
import { connectionWhereSocket, type IdleConnection } from '../postgres/facts-read.js';
import { ServerReads, type ApplyTicket } from './server-reads.js';
import type { PostgresConnectRequest } from '../postgres/server-context.js';
import type { Renderer } from '../render/index.js';
import { ReadAheadTransport, ReadAheadCache } from '../transports/read-ahead-cache.js';
import type { Transport } from '../transports/types.js';
import type { RunEvent } from './events.js';
import { FactsNotRead, type ScopeSources } from './scope.js';
import type { ShellExportRecorder } from './shell-export.js';

export interface EngineOptions {
  check: boolean;
  diff: boolean;
  forks: number;
  yes: boolean;
  limit?: string[];
  tags?: string[];
  from?: string;
  defaultTimeoutMs: number;
  /** "step@host" pairs that already succeeded in the run being resumed. */
  alreadyDone?: Set<string>;
  /** When the run began (epoch ms) for run-end's duration: the CLI's process start, so start-up counts. Default: when the engine starts. */
  startedAt?: number;
}

export interface EngineDeps {
  renderer: Renderer;
  getAction(name: string): Action<any> | undefined;
  createTransport(host: Host): Transport;
  /**
   * All of a host's facts; with areas, only those (the engine keeps the rest: mergeFacts). `idle`: the
   * run's idle connection to the host's server, which a read of `areas` may ask (postgres/facts-read.ts).
   */
  gatherFacts(host: Host, transport: Transport, areas?: readonly FactArea[], idle?: IdleConnection): Promise<HostFacts>;
  resolveSecret(ref: unknown): Promise<string | undefined>;
  connectPostgres(transport: Transport, host: Host, options: { database?: string; port?: number; connectTimeoutMs?: number }): Promise<Client>;
  /** Loads what connectPostgres needs (its client library) ahead of the first connection; never rejects. */
  prepareConnections?(): Promise<void>;
  /** Asks a human; resolves false when nobody can answer (not a TTY). */
  ask?(question: string): Promise<boolean>;
  loadInclude?(file: string, fromDir: string): Promise<Playbook>;
  /**
   * Whether steps' reads on this transport go through the run's read-ahead cache (read ahead several steps
   * at once). Default: over SSH, where each read is a round trip; a local stat costs less than the
   * shell that would read ahead.
   */
  readsAhead?(transport: Transport): boolean;
}

/** The pool's key of a connection: its database and port (a port of its own, e.g. a drill instance's). */
function poolKey(database: string | undefined, port: number | undefined): string {
  return `${database ?? 'postgres'}:${port ?? ''}`;
}

/** How long an idle connection may take to answer before a read does without it. */
const IDLE_CHECK_MS = 5_000;


/** Everything one run shares across steps and hosts: state, options, dependencies, event sink. */
export class RunContext {
  readonly facts: Record<string, HostFacts> = {};
  readonly registered: Record<string, Record<string, unknown>> = {};
  /** Why a host could not be connected to, with its hint (facts keep only the message). */
  readonly connectionErrors: Record<string, PgplayError> = {};
  /** Host state read ahead for the state checks of upcoming steps (see read-ahead.ts). */
  readonly readAheadCache = new ReadAheadCache();
  /** The run's PostgreSQL connections, one per host and database, reused by every step (connection-pool.ts). */
  readonly connections = new ConnectionPool();
  /** When each host's server was last read, against when a change last ended (guards.ts's read after a step). */
  readonly serverReads = new ServerReads();
  private readonly transports = new Map<string, Transport>();
  /** The hosts whose facts were checked against the inventory's claims (claims.ts: inventoryRefusal). */
  readonly inventoryChecked = new Set<string>();
  /** The first reads of hosts' facts under way (readMissingFacts). */
  private readonly firstReads = new Map<string, Promise<unknown>>();
  private confirmQueue: Promise<unknown> = Promise.resolve();
  /** plan --export-shell: records what each step would run (shell-export.ts). */
  shellExport?: ShellExportRecorder;
  /** `key@host` of the confirmations a human gave with a key (see confirm). */
  private readonly confirmed = new Set<string>();

  constructor(
    readonly runId: string,
    readonly playbook: Playbook,
    readonly playbookFile: string,
    /** The directory of the playbook whose steps run now (an included one's while its steps run). */
    public playbookDir: string,
    readonly inventory: Inventory,
    readonly inventoryFile: string,
    readonly hosts: Record<string, Host>,
    public params: Record<string, unknown>,
    public vars: Record<string, unknown>,
    readonly options: EngineOptions,
    readonly deps: EngineDeps,
    readonly redactor: Redactor,
    /** Aborted at the end of the grace period after Ctrl-C; cleanup steps run under a fresh one (run.ts). */
    public signal: AbortSignal,
    private readonly sink: (event: RunEvent) => void,
  ) {}

  get renderer(): Renderer {
    return this.deps.renderer;
  }

  getAction(name: string): Action<any> | undefined {
    return this.deps.getAction(name);
  }

  /** Splits a step into its common keys and its one action. The loader has already checked there is exactly one. */
  actionOf(step: Step): { action: Action<any>; input: unknown } {
    for (const [key, value] of Object.entries(step)) {
      const action = this.getAction(key);
      if (action) return { action, input: value };
    }
    throw new PgplayError({ code: 'SEMANTIC', message: `step ${step.id} has no known action`, step: step.id });
  }

  /**
   * Whether the step's action declares `flag` (Action.connects): an include, or a step
   * the loader would refuse, declares nothing.
   */
  actionDeclares(step: Step, flag: 'connects'): boolean {
    if (INCLUDE_KEY in step) return false;
    try {
      return this.actionOf(step).action[flag] === true;
    } catch {
      return false;
    }
  }

  scopeSources(): ScopeSources {
    return {
      params: this.params,
      vars: this.vars,
      inventory: this.inventory,
      hosts: this.hosts,
      facts: this.facts,
      registered: this.registered,
      factsOnDemand: true,
    };
  }

  /**
   * Evaluates (renders, decides) with the facts of every host it reads: a value that reads the facts of a
   * host the run has not read yet (FactsNotRead, scope.ts; --limit, or a host no step runs on) has them
   * read, and is evaluated again. Evaluating only reads, so the second evaluation sees what the first
   * would have, had the facts been there. `evaluate` builds its scopes afresh each time.
   */
  async withFacts<T>(evaluate: () => T | Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await evaluate();
      } catch (e) {
        // Facts already there, or a host the inventory does not have: not a read that would help.
        if (!(e instanceof FactsNotRead) || this.facts[e.host] || !this.hosts[e.host]) throw e;
        await this.readMissingFacts([e.host]);
      }
    }
  }

  /** Reads the facts of those hosts the run has not read yet; one read per host, however many ask at once. */
  async readMissingFacts(hostNames: string[]): Promise<void> {
    await Promise.all(
      hostNames
        .filter((h) => !this.facts[h])
        .map((h) => {
          let read = this.firstReads.get(h);
          if (!read) {
            read = this.refreshFacts(h).finally(() => this.firstReads.delete(h));
            this.firstReads.set(h, read);
          }
          return read;
        }),
    );
  }

  transportFor(hostName: string): Transport {
    let transport = this.transports.get(hostName);
    if (!transport) {
      const host = this.hosts[hostName];
      if (!host) throw new PgplayError({ code: 'SEMANTIC', message: `unknown host ${hostName}` });
      transport = this.deps.createTransport(host);
      if (this.deps.readsAhead?.(transport) ?? transport.kind === 'ssh') transport = new ReadAheadTransport(transport, this.readAheadCache);
      this.transports.set(hostName, transport);
    }
    return transport;
  }

  /**
   * Reads a host's facts again: all of them, or only `areas` (what a step declared it changed). Returns
   * what this read itself found (before it is merged with what the run knew), for a caller that hands it
   * on as a read of this moment (guards.ts: the invariant's read before a step, for that step's check).
   */
  async refreshFacts(hostName: string, areas?: readonly FactArea[]): Promise<HostFacts> {
    const transport = this.transportFor(hostName);
    const mark = this.serverReads.begin();
    // Connect first so a failure keeps its hint and expected (how to trust a host key, which key
    // to check) for the steps that report it; gathering facts would only keep the message.
    try {
      await transport.connect();
      delete this.connectionErrors[hostName];
    } catch (e) {
      if (e instanceof PgplayError) this.connectionErrors[hostName] = e;
      this.serverReads.read(hostName, mark, false);
      return (this.facts[hostName] = unknownFacts((e as Error).message));
    }
    // Gathering facts only reads: it must not count as a change that drops what was read ahead.
    const reader = transport instanceof ReadAheadTransport ? transport.inner : transport;
    // Only a host read before can be read in part: a first read (or one after it was unreachable) reads all.
    const partial = this.facts[hostName]?.reachable ? areas : undefined;
    const fresh = await this.deps.gatherFacts(this.hosts[hostName]!, reader, partial, partial ? () => this.idleConnection(hostName) : this.connectionForFacts(hostName, reader));
    this.facts[hostName] = partial ? mergeFacts(this.facts[hostName], fresh, partial) : fresh;
    // Only a read that answered in full vouches for the server (one whose query failed is read again when it matters).
    if (!partial || partial.includes('server')) this.serverReads.read(hostName, mark, fresh.reachable && !fresh.error);
    return fresh;
  }

  /**
   * Facts an action read after its change (Outcome.facts): the declared areas are taken as they are.
   * `ticket`: that apply's, for server-reads.ts.
   */
  adoptFacts(hostName: string, fresh: HostFacts, areas: readonly FactArea[], ticket: ApplyTicket): void {
    this.facts[hostName] = mergeFacts(this.facts[hostName], fresh, areas);
    if (areas.includes('server')) this.serverReads.adopted(hostName, ticket, fresh.reachable && !fresh.error);
  }

  resolveSecret(ref: unknown): Promise<string | undefined> {
    return this.deps.resolveSecret(ref);
  }

  /**
   * A connection of the run's pool (the caller's client.end() gives it back). `openedAfter`: the token of
   * the step that changed this server just before (connectionAfterChange).
   */
  connectPostgres(hostName: string, options: Omit<PostgresConnectRequest, 'hostName'>, openedAfter?: object): Promise<Client> {
    const { database, port, timeoutMs } = options;
    const open = () => this.deps.connectPostgres(this.transportFor(hostName), this.hosts[hostName]!, { database, port, connectTimeoutMs: timeoutMs });
    return this.connections.lease(hostName, poolKey(database, port), open, timeoutMs, openedAfter);
  }

  /**
   * For a host's first read of its facts on this machine: a connection the pool opens to its server at
   * the inventory's socket, which the read asks instead of a psql of its own and then gives back for the
   * run's SQL steps (a step that connects would open it anyway; start.ts closes it when none does).
   * Undefined over SSH, where the bridge is a session and a perl of its own, and the script's psql costs no
   * more. A server without its socket file, or that does not answer in time, opens none, and the read goes
   * on with psql as before (facts-read.ts). `openedAfter`: as connectPostgres's (connectionAfterChange).
   */
  private connectionForFacts(hostName: string, reader: Transport, openedAfter?: object): IdleConnection | undefined {
    if (reader.kind !== 'local') return undefined;
    return connectionWhereSocket(this.hosts[hostName]!, (timeoutMs) => this.connectPostgres(hostName, { timeoutMs }, openedAfter));
  }

  /**
   * For a read of a server that a step has just started, restarted or promoted (its action's probe after
   * the change, postgres/probe.ts): the pool's idle connection to it, else one the pool opens at the
   * inventory's socket on this machine, which the read asks instead of a psql of its own (facts-read.ts
   * ties its answers to this PGDATA's postmaster as for the first read). The engine closes a host's
   * connections around a step that changes its server; one opened for `step` (the attempt's token) after
   * the change is spared and serves the steps after (a drill's readiness wait, proof and checks). Undefined
   * over SSH and where no socket answers: the read then runs psql, as before.
   */
  async connectionAfterChange(hostName: string, step: object): Promise<Client | undefined> {
    return (await this.idleConnection(hostName)) ?? this.connectionForFacts(hostName, this.transportFor(hostName), step)?.();
  }

  /**
   * An idle connection of the pool's to the host's server at the inventory's socket and port, as a step
   * left it (its client.end() gives it back); undefined when there is none: nothing is opened for it.
   */
  idleConnection(hostName: string): Promise<Client | undefined> {
    // One idle connection at most: each check may take IDLE_CHECK_MS, and a read gains only ~35 ms from it.
    return this.connections.leaseIdle(hostName, poolKey(undefined, undefined), IDLE_CHECK_MS, 1);
  }

  /**
   * Destructive steps pass only with --yes or a human's "yes"; prompts are asked one at a time. A yes
   * given with a `key` (e.g. "restart") also answers later questions with that key on the same host.
   */
  confirm(stepId: string, hostName: string, message: string, key?: string): Promise<void> {
    if (this.options.yes) return Promise.resolve();
    const keyed = key === undefined ? undefined : `${key}@${hostName}`;
    if (keyed !== undefined && this.confirmed.has(keyed)) return Promise.resolve();
    const asked = this.confirmQueue.then(async () => {
      if (keyed !== undefined && this.confirmed.has(keyed)) return;
      const answer = this.deps.ask ? await this.deps.ask(`${message}\nProceed with step ${stepId} on ${hostName}?`) : false;
      if (answer && keyed !== undefined) this.confirmed.add(keyed);
      if (!answer) {
        throw new PgplayError({
          code: 'GUARD',
          message: `not confirmed: ${message}`,
          hint: this.deps.ask ? 'answer y to proceed' : 'no terminal to ask; rerun with --yes to confirm destructive steps',
        });
      }
    });
    this.confirmQueue = asked.catch(() => undefined);
    return asked;
  }

  emit(event: RunEvent): void {
    this.sink(this.redactor.redactValue(event));
  }

  emitLog(step: string, host: string, line: string): void {
    this.emit({ type: 'log', step, host, line, time: new Date().toISOString() });
  }

  /**
   * Ends the run's connections (and their bridge processes) and the transports. closeAll() writes every
   * connection's Terminate at once, before its first wait; a local transport's close ends its bridges'
   * input only after that (it is written first, in order), so local transports close meanwhile (their
   * helpers' sessions end beside the servers' backends). An SSH session closes once its connections have.
   */
  async closeTransports(): Promise<void> {
    const transports = [...this.transports.values()];
    const closeAll = (list: Transport[]) => Promise.allSettled(list.map((t) => t.close()));
    await Promise.all([this.connections.closeAll(), closeAll(transports.filter((t) => t.kind === 'local'))]);
    await closeAll(transports.filter((t) => t.kind !== 'local'));
  }

  openTransports(): Transport[] {
    return [...this.transports.values()];
  }
}
