import type { Client } from 'pg';
import type { Redactor } from '../core/redact.js';
import type { FactArea, HostFacts } from '../model/facts.js';
import type { Host, Inventory } from '../model/inventory.js';
import type { JsonSchema } from '../schema/json-schema.js';
import type { PostgresConnectRequest } from '../postgres/server-context.js';
import type { Transport } from '../transports/types.js';

/*
 * The interface through which the engine knows actions: it owns it, actions implement it, and only the
 * composition root (src/app) hands the engine a list of them.
 */

export type RoleChange = 'promotes' | 'starts';
export type { FactArea };

/**
 * What an action reports. `check` reports what would happen (changed = would change) and must not
 * change anything anywhere; `apply` does it and reports what happened.
 */
export interface Outcome {
  changed: boolean;
  /** The action decided there is nothing to do for a reason worth showing (e.g. a `creates` guard). */
  skipped?: boolean;
  msg?: string;
  /** Unified diff of a file the action would change / changed. */
  diff?: string;
  /** Structured result: becomes the registered value (with changed/failed/skipped added). */
  data?: Record<string, unknown>;
  /**
   * From check: what was found needs a human's yes (or --yes) before the run goes on, whether or not
   * this step itself changes anything (e.g. a restart of a primary that later steps will make). One yes
   * per `key` and host covers every later step that asks with the same key (the restart itself).
   */
  confirm?: { message: string; key?: string };
  /**
   * From apply: the host's facts as apply read them after its change (e.g. the server's state once a start
   * or a stop was done, read while pg_ctl had yet to return). The engine takes the areas the action
   * declares (`changes`) from them instead of reading them again; they are never shown or registered.
   */
  facts?: HostFacts;
}

/** What an action's exportShell gives: shell lines (already quoted) and comments (checks, notes). */
export interface ShellExport {
  /** Comment lines (without the leading '#'): the checks, what the state was at plan time. */
  comments?: string[];
  /** Shell lines, in order; run under `set -eu` as root on the host. */
  commands?: string[];
  /** Environment variables the commands read (secrets by reference): the script checks they are set. */
  env?: string[];
  /** The commands run even when check found nothing to change (a wait: its condition is for then, not now). */
  runAlways?: boolean;
}

export interface ActionContext {
  step: { id: string; name: string };
  host: Host;
  hosts: Record<string, Host>;
  inventory: Inventory;
  transport: Transport;
  /** Transport of another host (e.g. the upstream a standby streams from). */
  transportFor(hostName: string): Transport;
  facts: HostFacts;
  /** Another host's facts; read then when the run has not read them yet (--limit, a host no step runs on). */
  factsOf(hostName: string): Promise<HostFacts>;
  /** What the run has read of a host's facts, if it has: never reads (for a check that asks the host itself anyway). */
  factsIfRead(hostName: string): HostFacts | undefined;
  /** True under --check / plan (or check_mode: true): only `check` is ever called then. */
  checkMode: boolean;
  diff: boolean;
  /** OS user for commands and file writes: the step's `become`, else connection.become; postgres-aware actions run PGDATA work as host.postgres.osUser themselves. */
  become?: string;
  timeoutMs?: number;
  signal: AbortSignal;
  redactor: Redactor;
  /** Renders a template file from templates/ (or a path relative to the playbook) with the step's context. */
  renderTemplate(src: string, extra?: Record<string, unknown>): Promise<string>;
  /** Resolves a secret reference ({env} / {file}) and registers it with the redactor. */
  secret(ref: unknown): Promise<string | undefined>;
  /** Connects to PostgreSQL on a host (default: this one) as the superuser. Caller ends the client. */
  connectPostgres(options?: PostgresConnectRequest): Promise<Client>;
  /** The run's idle connection to a host's server, if one is open (see ServerContext); the caller ends it. */
  idleConnection?(hostName: string): Promise<Client | undefined>;
  /** After this step changed a host's server: a connection to it the run keeps for the steps after (see ServerContext). */
  connectionAfterChange?(hostName: string): Promise<Client | undefined>;
  /** This apply's change is over; what it does from now on only reads (see ServerContext). */
  changeEnded?(): void;
  /**
   * The template/expression scope of this step on this host (params, vars, host, facts, registered, ...).
   * Evaluate with it inside withFacts: another host's facts the run has not read are read then.
   */
  scope(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Evaluates with the facts of every host the evaluation reads (RunContext.withFacts); `evaluate` builds its scope itself. */
  withFacts<T>(evaluate: () => T): Promise<T>;
  /** Progress lines shown under the step in verbose output (redacted by the engine). */
  log(line: string): void;
  /** Directory of the playbook file, for relative paths. */
  playbookDir: string;
  /**
   * What this attempt's check read and decided on, for its apply to act on instead of reading it again
   * (one probe per fact per step): a new map for every attempt, emptied by the engine when a human was
   * asked between check and apply (they may have taken their time). Absent: apply reads for itself.
   */
  checkReads?: Map<string, unknown>;
  /**
   * The run answers every confirmation itself (--yes): no human is asked between this check and its
   * apply, so what check put in checkReads reaches apply. False or absent: a destructive step asks first,
   * and a check that refuses should do so before that question.
   */
  assumeYes?: boolean;
}

/**
 * ctx.checkReads key the engine fills on a step's first attempt when it has just read the host's data
 * directory and server for that very step (the one-primary invariant's read before a step that can start
 * or promote a server, engine/guards.ts): the facts script's data directory and server sections, what
 * postgres/probe.ts reads, read after the run's locks and moments before check. A check that would probe
 * the same takes it instead; absent on a retry (it must see the host as it is now) and on other steps.
 */
export const ENGINE_SERVER_READ = 'engine.server-read';

export interface Action<I = Record<string, unknown>> {
  name: string;
  summary: string;
  /** JSON Schema of the input after rendering. Template strings are allowed by the playbook schema. */
  schema: JsonSchema;
  /** Whether this input is destructive (needs confirmation and guards). */
  destructive?(input: I): boolean;
  /**
   * A confirmation this input asks for at run time only in some cases (e.g. a restart, when the server
   * is a running primary): when, in words. `pgplay docs` lists it with the destructive steps.
   */
  confirmation?(input: I): string | undefined;
  /**
   * Whether this input only reads: such a step may run for real under plan/--check when it says
   * `check_mode: false` (a query whose rows later steps need); any other step never does. Called with
   * the input as written (templates unrendered) when the playbook is loaded and with the rendered input
   * before the step runs. Answer false whenever unsure: a wrong true lets plan change something.
   */
  readOnly?(input: I): boolean;
  /**
   * Whether this input can change which server runs read-write: 'promotes' when the host leaves
   * recovery (or will at its next start), 'starts' when a server comes up that could be read-write.
   * The engine checks the one-primary invariant before and after such a step (src/engine/guards.ts).
   */
  changesRole?(input: I): RoleChange | false;
  /**
   * Which of this host's facts a change by this input makes stale (model/facts.ts: 'pgdata', 'server'):
   * after apply changed something, the engine reads again exactly these (or takes them from the
   * outcome's `facts`), nothing else. [] when the action changes nothing facts describe (a file, a
   * role, a query). Every shipped action declares it (test/unit/fact-areas.test.ts).
   */
  changes?: readonly FactArea[] | ((input: I) => readonly FactArea[]);
  /**
   * True when check or apply may open a PostgreSQL connection (ActionContext.connectPostgres, itself or in
   * a helper it calls; a read over an idle connection the run holds opens none): a run whose steps use such
   * an action loads the client library while its facts are read (engine/preflight-warm.ts) rather than on
   * its first such step, and keeps the connections its first facts reads opened (engine/start.ts). A run
   * with none never loads it. test/unit/action-connects.test.ts checks the declarations against the code.
   */
  connects?: boolean;
  /**
   * The paths whose stat and content check reads, for the engine to fetch the state of several
   * consecutive steps in one round trip per host (over SSH each read is otherwise a session of its
   * own). Declare it only when every change the action makes goes through ctx.transport: that is
   * what tells the engine when read-ahead answers stop being true.
   */
  readAhead?(input: I): string[];
  /**
   * The break-glass export (`plan --export-shell`, src/engine/shell-export.ts): what apply would do for
   * this input on this host, given what check found, as POSIX shell lines, for a human to run when
   * pgplay cannot. Read-only checks are comments; secrets appear only as environment references
   * ("$NAME"), never as values. An action without it cannot be exported: the export fails naming the step.
   */
  exportShell?(ctx: ActionContext, input: I, planned: Outcome): Promise<ShellExport>;
  /**
   * The template files this input renders (ctx.renderTemplate), with the extra names each sees: before a
   * run's first change the engine checks that each exists and renders (engine/preflight-render.ts).
   */
  templates?(input: I): Array<{ src: string; vars?: Record<string, unknown> }>;
  /**
   * Checks of the rendered input its schema cannot express (a duration, a combination of keys), as check
   * would throw them: the engine calls it before the run's first change, so a value a late step reads
   * refuses the run before the steps ahead of it change anything.
   */
  validateInput?(input: I, where: { host: Host; hosts: Record<string, Host>; inventory: Inventory }): void;
  check(ctx: ActionContext, input: I): Promise<Outcome>;
  /** Called only outside check mode, and only when check reported changed (or cannot know). */
  apply(ctx: ActionContext, input: I, planned: Outcome): Promise<Outcome>;
}
