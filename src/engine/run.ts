import { errorPayload, EXIT, PgplayError } from '../core/errors.js';
import type { Step } from '../model/playbook.js';
import type { RecapCounts, RunEvent, StepStatus } from './events.js';
import { isGuard, prepareGuardHosts, seedResumed, watchRoles } from './guards.js';
import { runInclude } from './include.js';
import { loopRegistered, runLoopOnHost, type HostEntry } from './loop.js';
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
  /** A loop's item: the item it was (redacted), so a changed list is not taken for the same one. */
  item?: unknown;
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
  /** Every value a step (or a loop's item, with its index) registers, as it registers it (the journal keeps them for --resume). */
  onRegistered?(step: string, host: string, handler: boolean, name: string, value: Record<string, unknown>, index?: number): void;
}

/** `step@host`, `handler:name@host`; a loop's item is `step[index]@host`. */
export function priorKey(step: string, host: string, handler: boolean, index?: number): string {
  return `${handler ? 'handler:' : ''}${step}${index === undefined ? '' : `[${index}]`}@${host}`;
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
  // Whether any step got as far as its action on any host (in this run or the one it resumes): from
  // then on an invalid input is a failed run (exit 1, resumable), no longer "nothing was run" (exit 2).
  let ran = false;

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
        const completed = await runInclude(
          run,
          step,
          id,
          passedBy,
          (children, childPrefix, childGuardsOnly) => runSteps(children, childPrefix, false, childGuardsOnly),
          (s) => stepHosts(s, id),
        );
        if (!completed) stopped = true;
        continue;
      }
      const guard = isGuard(step);
      if (passedBy && !guard) continue;
      // A guard checks every host it names, --limit or not: what it protects is the whole cluster.
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
      const priorOf = (id: string, host: string, handler: boolean, index?: number) => (guard ? undefined : donePair(id, host, handler, index));
      const results = await mapLimit(hosts, run.options.forks, async (host): Promise<HostEntry[] | undefined> => {
        if (interrupt.aborted && step.cleanup !== true) return undefined;
        if (roles.refusal) return [{ result: roles.refusal }];
        if (step.loop !== undefined) {
          return runLoopOnHost(run, { ...step, id }, host, { interrupt, prior: (index) => priorOf(id, host, handler, index), done: doneBefore });
        }
        const prior = priorOf(id, host, handler);
        if (prior || (!guard && run.options.alreadyDone?.has(`${id}@${host}`))) return [{ result: doneBefore(), prior }];
        return [{ result: await runStepOnHost(run, { ...step, id }, host, readahead?.(host)) }];
      });
      run.readCache.stepFinished();
      let stepFailed = false;
      hosts.forEach((host, i) => {
        const entries = results[i];
        if (!entries) return;
        if (step.register) register(step.register, step.loop !== undefined, entries, id, host, handler);
        // A change made by the resumed run still owes its handlers (they run at the end, so they had not).
        if (entries.some(({ result, prior }) => result.status === 'changed' || prior?.status === 'changed')) {
          for (const name of step.notify ?? []) (notified.get(name) ?? notified.set(name, new Set()).get(name)!).add(host);
        }
        for (const { result, prior, loop } of entries) {
          if (result.error) {
            result.error.step ??= id;
            result.error.host ??= host;
          }
          count(host, result.status);
          if (result.error?.code === 'TRANSPORT') recap[host]!.unreachable++;
          // Under plan nothing is ever changed: bad input met there is still "nothing was run" (exit 2).
          if (!run.options.check && (prior || result.status === 'ok' || result.status === 'changed' || (result.status === 'failed' && result.error?.exitCode !== EXIT.INVALID))) ran = true;
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
            ...(loop ? { item: loop.item, index: loop.index, items: loop.items } : {}),
            error: result.error ? errorPayload(result.error) : undefined,
            time: new Date().toISOString(),
          });
          if (result.status === 'failed' && !result.ignored) {
            stepFailed = true;
            if (!failure || (result.error && failure.exitCode < result.error.exitCode)) failure = result.error;
            if (result.error?.code === 'GUARD' || result.error?.code === 'LOCK') refused = true;
          }
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

  const donePair = (id: string, host: string, handler: boolean, index?: number) => hooks.prior?.get(priorKey(id, host, handler, index));

  const doneBefore = (): HostStepResult => {
    const msg = hooks.resumedFrom ? `done in run ${hooks.resumedFrom}` : 'done in the resumed run';
    return { status: 'skipped', outcome: { changed: false, skipped: true, msg }, attempts: 0, durationMs: 0 };
  };

  /** What `register` keeps for a step on a host; a pair done in the resumed run gives back what it registered then. */
  const register = (name: string, looped: boolean, entries: HostEntry[], id: string, host: string, handler: boolean) => {
    if (looped) {
      const { value, fresh } = loopRegistered(entries, name);
      for (const item of fresh) hooks.onRegistered?.(id, host, handler, name, item.value, item.index);
      (run.registered[host] ??= {})[name] = value;
      hooks.onRegistered?.(id, host, handler, name, value);
      return;
    }
    const { result, prior } = entries[0]!;
    const value = prior && name in prior.registered ? (prior.registered[name] as Record<string, unknown>) : registeredValue(result);
    (run.registered[host] ??= {})[name] = value;
    if (!prior) hooks.onRegistered?.(id, host, handler, name, value);
  };

  const stepHosts = (step: Step, id: string): string[] => targetHosts(run, selectHosts, allHosts, step, id);

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
  const invalid = failure?.exitCode === EXIT.INVALID && !ran;
  const status: RunOutcome['status'] = interrupted ? 'interrupted' : refused ? 'refused' : failure ? (invalid ? 'invalid' : 'failed') : 'ok';
  const exitCode = interrupted ? EXIT.INTERRUPTED : failure ? (failure.exitCode === EXIT.INVALID && !invalid ? EXIT.FAILED : failure.exitCode) : EXIT.OK;
  run.emit({
    type: 'run-end',
    runId: run.runId,
    status,
    exitCode,
    recap,
    durationMs: Date.now() - started,
    error: failure ? { ...errorPayload(failure), exitCode } : undefined,
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

