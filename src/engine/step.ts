import type { Client } from 'pg';
import { ENGINE_SERVER_READ, type Action, type ActionContext, type Outcome } from './action.js';
import { formatMs, parseDuration } from '../core/duration.js';
import { PgplayError, PgplayErrors } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import type { FactArea, HostFacts } from '../model/facts.js';
import type { Step } from '../model/playbook.js';
import type { StepStatus } from './events.js';
import { validateRenderedInput } from './input.js';
import { sleep } from './pool.js';
import { readAhead } from './read-ahead.js';
import type { RunContext } from './run-context.js';
import type { ApplyTicket } from './server-reads.js';
import { hostScope } from './scope.js';
import { toleratedUnreachable } from './unreachable.js';

export interface HostStepResult {
  status: StepStatus;
  outcome?: Outcome;
  error?: PgplayError;
  ignored?: boolean;
  attempts: number;
  durationMs: number;
}

/**
 * One step on one host: when → render → validate → (confirm) → check → apply with retries/until and a
 * timeout. Never throws: the outcome, including failures, is returned for the scheduler to report.
 */
export async function runStepOnHost(
  run: RunContext,
  step: Step,
  hostName: string,
  readAheadWindow: Step[] = [],
  /** Names added to the step's scope: a loop's item and item_index. */
  extra: Record<string, unknown> = {},
  /**
   * The host's data directory and server as the engine read them for this step, after the run's locks,
   * moments ago (guards.ts: the one-primary invariant's read before it): the first attempt's check takes
   * them (ENGINE_SERVER_READ) instead of reading them again; a retry reads afresh.
   */
  serverRead?: HostFacts,
): Promise<HostStepResult> {
  const started = Date.now();
  let attempts = 0;
  const finish = (r: Omit<HostStepResult, 'durationMs' | 'attempts'>): HostStepResult => ({
    ...r,
    attempts,
    durationMs: Date.now() - started,
  });
  try {
    const facts = run.facts[hostName];
    if (facts && !facts.reachable) {
      const cause = run.connectionErrors[hostName];
      const tolerated = toleratedUnreachable(step, cause);
      if (tolerated) return finish(tolerated);
      throw new PgplayError({
        code: 'TRANSPORT',
        message: `host is unreachable: ${facts.error ?? 'unknown reason'}`,
        expected: cause?.expected,
        hint: cause?.hint,
        unreachable: cause?.unreachable,
      });
    }
    const scope = () => hostScope(run.scopeSources(), hostName, extra);
    const when = step.when;
    if (when !== undefined && !(await run.withFacts(() => evaluateCondition(when, scope())))) {
      run.shellExport?.skipped(step, hostName, `when: ${step.when}`);
      return finish({ status: 'skipped', outcome: { changed: false, skipped: true, msg: 'condition is false' } });
    }
    const { action, input: rawInput } = run.actionOf(step);
    const rendered = await run.withFacts(() => run.renderer.renderValue(rawInput, scope(), `step ${step.id}`));
    const input = validateRenderedInput(action, rendered);
    const checkMode = stepCheckMode(step, action, input, run.options.check);
    const timeoutMs = step.timeout !== undefined ? parseDuration(step.timeout as string | number, 'timeout') : run.options.defaultTimeoutMs;
    const retries = step.retries ?? 0;
    const delayMs = step.delay !== undefined ? parseDuration(step.delay as string | number, 'delay') : 1000;
    await readAhead(run, hostName, readAheadWindow, { signal: run.signal, timeoutMs }, action.readAhead?.(input));

    for (;;) {
      attempts++;
      // A retry waits for something to change: it must see the host as it is now.
      if (attempts > 1) run.readAheadCache.forget(hostName);
      let outcome: Outcome | undefined;
      let error: PgplayError | undefined;
      try {
        outcome = await withTimeout(timeoutMs, run.signal, (signal) =>
          attempt(run, step, hostName, action, input, { checkMode, timeoutMs, signal, extra, serverRead: attempts === 1 ? serverRead : undefined }),
        );
      } catch (e) {
        error = toPgplayError(e);
      }
      // Guards and interrupts are final: retrying a refusal would only refuse again.
      const final = error && (error.code === 'GUARD' || error.code === 'LOCK' || error.code === 'INTERRUPTED');
      const until = step.until;
      const untilMet = !error && (until === undefined || checkMode || (await run.withFacts(() => evaluateCondition(until, { ...scope(), ...resultScope(step, outcome!) }))));
      if ((!error && untilMet) || final || attempts > retries || run.signal.aborted) {
        // The host went away during the step (its connection could not be opened again).
        const tolerated = toleratedUnreachable(step, error);
        if (tolerated) return finish(tolerated);
        if (error) return finish({ status: 'failed', error, ignored: step.ignore_errors === true && !final });
        if (!untilMet) {
          return finish({
            status: 'failed',
            outcome,
            error: new PgplayError({ code: 'STEP_FAILED', message: `condition "${step.until}" still false after ${attempts} attempts` }),
            ignored: step.ignore_errors === true,
          });
        }
        return finish({ status: outcome!.skipped ? 'skipped' : outcome!.changed ? 'changed' : 'ok', outcome });
      }
      run.emitLog(step.id, hostName, error ? `attempt ${attempts} failed: ${error.message}; retrying` : `attempt ${attempts}: condition not met; retrying`);
      await sleep(delayMs, run.signal);
    }
  } catch (e) {
    return finish({ status: 'failed', error: toPgplayError(e) });
  }
}

/**
 * check_mode: true always checks; under plan / --check only a step the action declares read-only may
 * run for real (check_mode: false). The loader refuses the others; this holds for rendered input too.
 */
export function stepCheckMode(step: Step, action: Action<any>, input: Record<string, unknown>, planning: boolean): boolean {
  // A templated check_mode is not rendered: a string counts as true, the safe reading.
  if (!planning) return Boolean(step.check_mode ?? false);
  return !(step.check_mode === false && action.readOnly?.(input) === true);
}

async function attempt(
  run: RunContext,
  step: Step,
  hostName: string,
  action: Action<any>,
  input: Record<string, unknown>,
  mode: { checkMode: boolean; timeoutMs: number; signal: AbortSignal; extra: Record<string, unknown>; serverRead?: HostFacts },
): Promise<Outcome> {
  // This attempt, for the connections its apply opens to a server after changing it (connectionAfterChange).
  const attemptToken = {};
  // The apply's changes as server-reads.ts counts them, from when it begins (changeEnded before then is nothing).
  const applying: { ticket?: ApplyTicket } = {};
  const ctx = actionContext(run, step, hostName, mode, attemptToken, () => applying.ticket && run.serverReads.applyEnded(applying.ticket));
  if (mode.serverRead) ctx.checkReads?.set(ENGINE_SERVER_READ, mode.serverRead);
  const planned = await action.check(ctx, input);
  if (mode.checkMode) {
    await run.shellExport?.planned(step, hostName, action, ctx, input, planned);
    return planned;
  }
  // What check found may need a yes even when this step changes nothing (it gates a later change).
  const destructive = planned.changed && (step.confirm || (action.destructive?.(input) ?? false));
  if (planned.confirm || destructive) {
    const message = typeof step.confirm === 'string' ? step.confirm : (planned.confirm?.message ?? `${step.name ?? step.id} is destructive on ${hostName}`);
    await run.confirm(step.id, hostName, message, step.confirm_key ?? planned.confirm?.key);
    // A human may have taken their time: apply acts on the state it finds then.
    run.readAheadCache.forget(hostName);
    if (!run.options.yes) ctx.checkReads?.clear();
  }
  if (!planned.changed) return planned;
  // A step that changes the server or its data directory (a stop, a restart, a restore) would break the
  // run's connections to it, and a smart shutdown would wait for them: they are closed around it.
  const areas = changedAreas(action, input);
  if (areas.length) await run.connections.drop(hostName);
  try {
    // Whatever apply did, and however it ended, a server read before its end no longer tells what is
    // there now (server-reads.ts; the one-primary invariant reads again after the step).
    const ticket = (applying.ticket = run.serverReads.applying());
    let applied: Awaited<ReturnType<typeof action.apply>>;
    try {
      applied = await action.apply(ctx, input, planned);
    } finally {
      run.serverReads.applyEnded(ticket);
    }
    const { facts, ...outcome } = applied;
    if (outcome.changed) await refreshChanged(run, hostName, areas, facts, ticket);
    return outcome;
  } finally {
    // Those opened before the change, or during it, are stale; one apply opened after it (its probe of the
    // server it started) is not.
    if (areas.length) await run.connections.drop(hostName, attemptToken);
  }
}

function changedAreas(action: Action<any>, input: Record<string, unknown>): readonly FactArea[] {
  return typeof action.changes === 'function' ? action.changes(input) : (action.changes ?? []);
}

/** After a change: the facts the action declares stale, taken from what apply read after it, else read again. */
async function refreshChanged(run: RunContext, hostName: string, areas: readonly FactArea[], facts: HostFacts | undefined, ticket: ApplyTicket): Promise<void> {
  if (areas.length === 0) return;
  if (facts) run.adoptFacts(hostName, facts, areas, ticket);
  else await run.refreshFacts(hostName, areas);
}

function actionContext(
  run: RunContext,
  step: Step,
  hostName: string,
  mode: { checkMode: boolean; timeoutMs: number; signal: AbortSignal; extra: Record<string, unknown> },
  attemptToken: object,
  changeEnded: () => void,
): ActionContext {
  const host = run.hosts[hostName]!;
  return {
    step: { id: step.id, name: step.name ?? step.id },
    host,
    hosts: run.hosts,
    inventory: run.inventory,
    transport: run.transportFor(hostName),
    transportFor: (name) => run.transportFor(name),
    facts: run.facts[hostName]!,
    factsOf: async (name) => {
      await run.readMissingFacts([name]);
      return run.facts[name]!;
    },
    factsIfRead: (name) => run.facts[name],
    checkMode: mode.checkMode,
    diff: run.options.diff,
    become: step.become ?? host.connection.become,
    timeoutMs: mode.timeoutMs,
    signal: mode.signal,
    redactor: run.redactor,
    renderTemplate: (src, extra = {}) => run.withFacts(() => run.renderer.renderFile(src, hostScope(run.scopeSources(), hostName, { ...mode.extra, ...extra }))),
    secret: (ref) => run.resolveSecret(ref),
    connectPostgres: (options = {}): Promise<Client> => run.connectPostgres(options.hostName ?? hostName, options),
    idleConnection: (name) => run.idleConnection(name),
    connectionAfterChange: (name) => run.connectionAfterChange(name, attemptToken),
    changeEnded,
    scope: (extra = {}) => hostScope(run.scopeSources(), hostName, { ...mode.extra, ...extra }),
    withFacts: (evaluate) => run.withFacts(evaluate),
    log: (line) => run.emitLog(step.id, hostName, line),
    playbookDir: run.playbookDir,
    checkReads: new Map(),
    assumeYes: run.options.yes,
  };
}

/** The registered value of a step: what `register` stores and `until`/`changed_when` see as `result`. */
export function registeredValue(result: HostStepResult): Record<string, unknown> {
  return {
    ...(result.outcome?.data ?? {}),
    changed: result.status === 'changed',
    failed: result.status === 'failed',
    skipped: result.status === 'skipped',
    msg: result.error?.message ?? result.outcome?.msg ?? '',
    attempts: result.attempts,
  };
}

function resultScope(step: Step, outcome: Outcome): Record<string, unknown> {
  const value = { ...(outcome.data ?? {}), changed: outcome.changed, failed: false, skipped: !!outcome.skipped, msg: outcome.msg ?? '' };
  return step.register ? { result: value, [step.register]: value } : { result: value };
}

async function withTimeout<T>(ms: number, parent: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new Error('timeout'));
      reject(new PgplayError({ code: 'TIMEOUT', message: `timed out after ${formatMs(ms)}` }));
    }, ms);
  });
  try {
    return await Promise.race([fn(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParentAbort);
  }
}

export function toPgplayError(e: unknown): PgplayError {
  if (e instanceof PgplayError) return e;
  if (e instanceof PgplayErrors) {
    const first = e.errors[0]!;
    return new PgplayError({ code: first.code, message: e.errors.map((x) => x.format()).join('; '), hint: first.hint });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new PgplayError({ code: 'STEP_FAILED', message, cause: e });
}

