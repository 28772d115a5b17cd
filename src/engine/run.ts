import { EXIT, PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import { resolveParams } from '../load/params.js';
import type { Step } from '../model/playbook.js';
import type { RecapCounts, RunEvent, StepStatus } from './events.js';
import { isGuard, prepareGuardHosts, seedResumed, watchRoles } from './guards.js';
import { mapLimit } from './pool.js';
import type { RunContext } from './run-context.js';
import { readaheadWindow, readsAreDeclared, windowByHost } from './readahead.js';
import { globalScope } from './scope.js';
import { registeredValue, runStepOnHost, toPgplayError, type HostStepResult } from './step.js';

export interface RunOutcome {
  exitCode: number;
  status: Extract<RunEvent, { type: 'run-end' }>['status'];
  recap: Record<string, RecapCounts>;
  error?: PgplayError;
}

export type HostSelector = (pattern: string | string[]) => string[];

/** What the run was told about an earlier run it resumes, keyed by `step@host` (`handler:name@host`). */
export interface PriorResult {
  status: 'ok' | 'changed';
  registered: Record<string, unknown>;
}

export interface RunHooks {
  /**
   * Ctrl-C: once aborted no new step or host starts; running ones go on until run.signal aborts them
   * (the caller aborts it after a grace period). Defaults to run.signal.
   */
  interrupt?: AbortSignal;
  /** Pairs that succeeded in the run being resumed: reported skipped, their notifications and registered values kept. */
  prior?: ReadonlyMap<string, PriorResult>;
  resumedFrom?: string;
  /** Every value a step registers, as it registers it (the journal keeps them for --resume). */
  onRegistered?(step: string, host: string, handler: boolean, name: string, value: Record<string, unknown>): void;
}

export function priorKey(step: string, host: string, handler: boolean): string {
  return `${handler ? 'handler:' : ''}${step}@${host}`;
}

/**
 * Runs the playbook's steps in order. Each step fans out over its hosts (up to --forks); a step that
 * fails on any host (without ignore_errors) ends the run after that step completes everywhere, because
 * DR procedures are sequential across hosts: building a standby after a failed restore helps nobody.
 * Handlers notified by changed steps run once at the end, in the order they are defined.
 */
export async function executeRun(run: RunContext, selectHosts: HostSelector, hooks: RunHooks = {}): Promise<RunOutcome> {
  const started = Date.now();
  const interrupt = hooks.interrupt ?? run.signal;
  const recap: Record<string, RecapCounts> = {};
  const notified = new Map<string, Set<string>>();
  let failure: PgplayError | undefined;
  let refused = false;
  let currentStep: string | undefined;

  const allHosts = Object.keys(run.hosts).filter((h) => !run.options.limit || run.options.limit.includes(h));
  seedResumed(run, hooks.prior);
  run.emit({
    type: 'run-start',
    runId: run.runId,
    playbook: run.playbookFile,
    inventory: run.inventoryFile,
    check: run.options.check,
    hosts: allHosts,
    steps: run.playbook.steps.map((s) => s.id),
    time: new Date().toISOString(),
  });

  const count = (host: string, status: StepStatus) => {
    const r = (recap[host] ??= { ok: 0, changed: 0, skipped: 0, failed: 0, unreachable: 0 });
    r[status]++;
  };

  // After a failure or Ctrl-C no further step starts, except `cleanup: true` ones (a drill's teardown).
  let cleanupSignal: AbortSignal | undefined;
  const enterCleanup = () => {
    // The grace period would abort them too: a cleanup step keeps its own timeout, and a second Ctrl-C
    // still exits at once.
    if (interrupt.aborted && !cleanupSignal) run.signal = cleanupSignal = new AbortController().signal;
  };

  /** guardsOnly: the steps --from or --tags pass by, of which only the guards run (guards.ts). */
  const runSteps = async (steps: Step[], prefix: string, handler: boolean, guardsOnly = false): Promise<boolean> => {
    let reachedFrom = !run.options.from || prefix !== '';
    let stopped = false;
    for (const [index, step] of steps.entries()) {
      const id = prefix + step.id;
      if (!reachedFrom && id === run.options.from) reachedFrom = true;
      if (interrupt.aborted) stopped = true;
      if (stopped && step.cleanup !== true) continue;
      if (stopped) enterCleanup();
      currentStep = id;
      const passedBy = guardsOnly || !reachedFrom || !tagsMatch(step, run.options.tags);
      if (step.include !== undefined && !handler) {
        if (!(await runInclude(step, id, passedBy))) stopped = true;
        continue;
      }
      const guard = isGuard(step);
      if (passedBy && !guard) continue;
      const hosts = guard ? targetHosts(run, selectHosts, Object.keys(run.hosts), step, id) : stepHosts(step, id);
      if (hosts.length === 0) continue;
      if (guard) await prepareGuardHosts(run, hosts);
      // An action that does not declare its reads may change a host by other ways than its transport.
      const declared = readsAreDeclared(run, step);
      if (!declared) run.readCache.invalidate();
      const readahead = declared ? windowByHost(readaheadWindow(run, steps, index, prefix), stepHosts) : undefined;
      run.emit({ type: 'step-start', step: id, name: step.name ?? step.id, hosts, handler, time: new Date().toISOString() });
      const roles = await watchRoles(run, { ...step, id }, hosts);
      // A guard is never done: what it proved in the resumed run may have stopped being true.
      const priorOf = (id: string, host: string, handler: boolean) => (guard ? undefined : donePair(id, host, handler));
      const results = await mapLimit(hosts, run.options.forks, async (host) => {
        if (interrupt.aborted && step.cleanup !== true) return undefined;
        if (roles.refusal) return roles.refusal;
        if (priorOf(id, host, handler) || (!guard && run.options.alreadyDone?.has(`${id}@${host}`))) {
          const msg = hooks.resumedFrom ? `done in run ${hooks.resumedFrom}` : 'done in the resumed run';
          const skipped: HostStepResult = { status: 'skipped', outcome: { changed: false, skipped: true, msg }, attempts: 0, durationMs: 0 };
          return skipped;
        }
        return runStepOnHost(run, { ...step, id }, host, readahead?.(host));
      });
      run.readCache.stepFinished();
      let stepFailed = false;
      hosts.forEach((host, i) => {
        const result = results[i];
        if (!result) return;
        if (result.error) {
          result.error.step ??= id;
          result.error.host ??= host;
        }
        count(host, result.status);
        if (result.error?.code === 'TRANSPORT') recap[host]!.unreachable++;
        const prior = priorOf(id, host, handler);
        if (step.register) {
          // A pair done in the resumed run gives later steps what it registered back then.
          const value = prior && step.register in prior.registered ? (prior.registered[step.register] as Record<string, unknown>) : registeredValue(result);
          (run.registered[host] ??= {})[step.register] = value;
          if (!prior) hooks.onRegistered?.(id, host, handler, step.register, value);
        }
        // A change made by the resumed run still owes its handlers (they run at the end, so they had not).
        if (result.status === 'changed' || prior?.status === 'changed') {
          for (const name of step.notify ?? []) (notified.get(name) ?? notified.set(name, new Set()).get(name)!).add(host);
        }
        run.emit({
          type: 'step-result',
          step: id,
          name: step.name ?? step.id,
          host,
          status: result.status,
          handler,
          msg: result.error ? result.error.message : result.outcome?.msg,
          diff: result.outcome?.diff,
          attempts: result.attempts,
          durationMs: result.durationMs,
          ignored: result.ignored || undefined,
          error: result.error ? { code: result.error.code, message: result.error.message, hint: result.error.hint } : undefined,
          time: new Date().toISOString(),
        });
        if (result.status === 'failed' && !result.ignored) {
          stepFailed = true;
          if (!failure || (result.error && failure.exitCode < result.error.exitCode)) failure = result.error;
          if (result.error?.code === 'GUARD' || result.error?.code === 'LOCK') refused = true;
        }
      });
      const splitBrain = await roles.after();
      if (splitBrain) {
        splitBrain.step ??= id;
        failure = splitBrain;
        refused = true;
        stopped = true;
      }
      if (stepFailed) stopped = true;
    }
    return !stopped;
  };

  const donePair = (id: string, host: string, handler: boolean) => hooks.prior?.get(priorKey(id, host, handler));

  const stepHosts = (step: Step, id: string): string[] => targetHosts(run, selectHosts, allHosts, step, id);

  const runInclude = async (step: Step, id: string, guardsOnly: boolean): Promise<boolean> => {
    // Passed by (--from, --tags): only an include holding guards is entered, for its guards alone.
    if (guardsOnly && !(await includeHasGuards(step, id))) return true;
    // An include is not per host: its `when` sees params, vars, inventory and hosts (with their facts).
    if (step.when !== undefined && !evaluateCondition(step.when, globalScope(run.scopeSources()))) return true;
    const { input, child } = await loadChild(step, id);
    const saved = run.params;
    // Included params are checked like -p values: typed, defaulted, unknown ones rejected.
    const given = Object.fromEntries(Object.entries(input.params ?? {}).map(([k, v]) => [k, String(v)]));
    run.params = resolveParams(child.params, given);
    try {
      return await runSteps(
        child.steps.map((s) => ({ ...s, hosts: s.hosts ?? step.hosts })),
        `${id}/`,
        false,
        guardsOnly,
      );
    } finally {
      run.params = saved;
    }
  };

  const loadChild = async (step: Step, id: string) => {
    const input = run.renderer.renderValue(step.include, globalScope(run.scopeSources()), `step ${id}`) as {
      playbook: string;
      params?: Record<string, unknown>;
    };
    if (!run.deps.loadInclude) throw new PgplayError({ code: 'SEMANTIC', message: 'include is not available here', step: id });
    return { input, child: await run.deps.loadInclude(input.playbook, run.playbookDir) };
  };
  const includeHasGuards = async (step: Step, id: string): Promise<boolean> => (await loadChild(step, id)).child.steps.some(isGuard);

  let completed = false;
  try {
    completed = await runSteps(run.playbook.steps, '', false);
    if (completed && !interrupt.aborted) {
      for (const [name, handler] of Object.entries(run.playbook.handlers ?? {})) {
        const hosts = notified.get(name);
        if (!hosts) continue;
        const selected = handler.hosts ? stepHosts({ ...handler, id: name } as Step, name).filter((h) => hosts.has(h)) : [...hosts];
        if (selected.length === 0) continue;
        completed = await runSteps([{ ...handler, id: name, hosts: selected } as Step], '', true);
        if (!completed) break;
      }
    }
  } catch (e) {
    failure = toPgplayError(e);
    failure.step ??= currentStep;
  }

  const interrupted = interrupt.aborted;
  // Exit 2 promises that nothing ran: bad input met after a change was made is a failed run (exit 1),
  // journaled like any failure so that --resume continues it.
  const changedBefore = !run.options.check && (Object.values(recap).some((r) => r.changed > 0) || [...(hooks.prior?.values() ?? [])].some((p) => p.status === 'changed'));
  const failureExit = failure && failure.exitCode === EXIT.INVALID && changedBefore ? EXIT.FAILED : failure?.exitCode;
  const status: RunOutcome['status'] = interrupted
    ? 'interrupted'
    : refused
      ? 'refused'
      : failure
        ? failureExit === EXIT.INVALID ? 'invalid' : 'failed'
        : 'ok';
  const exitCode = interrupted ? EXIT.INTERRUPTED : failure ? failureExit! : EXIT.OK;
  run.emit({
    type: 'run-end',
    runId: run.runId,
    status,
    exitCode,
    recap,
    durationMs: Date.now() - started,
    error: failure ? { code: failure.code, message: failure.message, hint: failure.hint, step: failure.step, host: failure.host } : undefined,
    time: new Date().toISOString(),
  });
  return { exitCode, status, recap, error: failure };
}

/** The hosts a step runs on: its `hosts` rendered (it may name a group or a registered value), within --limit. */
export function targetHosts(run: RunContext, selectHosts: HostSelector, allHosts: string[], step: Step, id: string): string[] {
  const pattern = run.renderer.renderValue(step.hosts, globalScope(run.scopeSources()), `step ${id} hosts`);
  return selectHosts(pattern as string | string[]).filter((h) => allHosts.includes(h));
}

function tagsMatch(step: Step, tags: string[] | undefined): boolean {
  if (!tags || tags.length === 0) return true;
  const own = step.tags ?? [];
  return own.includes('always') || own.some((t) => tags.includes(t));
}

