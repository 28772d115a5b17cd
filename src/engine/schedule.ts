import type { Step } from '../model/playbook.js';
import type { RoleChange } from './action.js';
import { hostsStepMayRunOn, isGuard, prepareStepHosts, splitBrainBeforeFirstChange, watchRoles } from './guards.js';
import { runInclude } from './include.js';
import { runRescue } from './rescue.js';
import { runLoopOnHost, type HostEntry } from './loop.js';
import type { Notifications } from './notify.js';
import { mapLimit } from './pool.js';
import { preflightLimit, preflightRender, type TopState } from './preflight-render.js';
import { doneBefore, priorKey, type PriorResult } from './prior.js';
import { readAheadWindow, readsAreDeclared, windowByHost } from './read-ahead.js';
import { registerResults, type RegisteredListener } from './register.js';
import type { RunContext } from './run-context.js';
import { stepResultEvent, stepStartEvent } from './run-events.js';
import { selectSteps } from './selection.js';
import { globalScope } from './scope.js';
import { runStepOnHost, toPgplayError } from './step.js';
import type { RunTally } from './tally.js';

export type HostSelector = (pattern: string | string[]) => string[];

/**
 * Whether the pre-flight (preflight-render.ts) must run before this step: it may be the run's first change.
 * A step that is not a guard may change something (unless --from passes it by; an include passed by is
 * entered for its guards, so it counts). A guard that only reads (an assert, a query: its action's
 * readOnly for the input as written, or check_mode: true) runs before the pre-flight, so that it refuses
 * with its own message; a guard that may change something (a fence stopping the primary) does not: had
 * it run first, a step the pre-flight then refused would leave the primary stopped and the run would
 * report that nothing was changed. A guarded include is judged by its steps, one by one, unless it has a
 * rescue.
 */
function mayChangeFirst(run: RunContext, step: Step, passedBy: boolean): boolean {
  // A section with a rescue is checked before it is entered: a refusal inside it would count as the
  // section failing, and its rescue would run (and change things) for a run that then says it changed nothing.
  if (step.include !== undefined && step.rescue !== undefined) return true;
  if (!isGuard(step)) return !(passedBy && step.include === undefined);
  if (step.include !== undefined || step.check_mode === true) return false;
  try {
    const { action, input } = run.actionOf(step);
    return action.readOnly?.(input) !== true;
  } catch {
    return true;
  }
}

export interface ScheduleOptions {
  selectHosts: HostSelector;
  /** The hosts steps may run on: the inventory's, within --limit. */
  allHosts: string[];
  /** Ctrl-C: once aborted no new step or host starts, except cleanup steps. */
  interrupt: AbortSignal;
  /** Pairs that succeeded in the run being resumed. */
  prior?: ReadonlyMap<string, PriorResult>;
  resumedFrom?: string;
  onRegistered?: RegisteredListener;
}

/**
 * Runs steps in order, each across its hosts (up to --forks): which steps run (--from, --tags, guards,
 * cleanup after a failure or Ctrl-C), on which hosts, what each host's results register and notify,
 * and when the run stops. A step that fails on any host (without ignore_errors) stops the steps after
 * it once it has completed everywhere.
 */
export class StepScheduler {
  /** The step being run, for an error thrown outside any host's result. */
  currentStep?: string;
  private cleanupSignal?: AbortSignal;
  /** The top playbook's state, for the input check before the first step that may change something (mayChangeFirst). */
  private preflight?: TopState;
  /** The same, for --limit's check before the first step of all (preflight-render.ts: preflightLimit). */
  private limitCheck?: TopState;

  constructor(
    private readonly run: RunContext,
    private readonly tally: RunTally,
    private readonly notifications: Notifications,
    private readonly options: ScheduleOptions,
  ) {
    this.preflight = { params: run.params, vars: run.vars, dir: run.playbookDir };
    this.limitCheck = run.options.limit ? this.preflight : undefined;
  }

  /** The hosts a step runs on: its `hosts` rendered, within --limit. */
  stepHosts = (step: Step, id: string): string[] => targetHosts(this.run, this.options.selectHosts, this.options.allHosts, step, id);

  /**
   * Runs steps (prefix: an include's id path) and returns whether they all completed. guardsOnly: the
   * steps --from or --tags pass by, of which only the guards run (guards.ts).
   */
  runSteps = async (steps: Step[], prefix: string, handler: boolean, guardsOnly = false): Promise<boolean> => {
    const { run, options } = this;
    let stopped = false;
    const selection = { from: run.options.from, tags: run.options.tags, handler };
    for (const { step, index, id, passedBy } of selectSteps(steps, prefix, selection, guardsOnly)) {
      if (options.interrupt.aborted) stopped = true;
      if (stopped && step.cleanup !== true) continue;
      if (stopped) this.enterCleanup();
      this.currentStep = id;
      if (this.limitCheck && !handler) {
        const top = this.limitCheck;
        this.limitCheck = undefined;
        if (!(await this.inputHolds(() => preflightLimit(run, options.selectHosts, options.allHosts, top)))) return false;
      }
      if (this.preflight && !handler && !stopped && mayChangeFirst(run, step, passedBy)) {
        const top = this.preflight;
        this.preflight = undefined;
        let ahead: { roleChange?: RoleChange } = {};
        const rendered = await this.inputHolds(async () => {
          ahead = await preflightRender(run, options.selectHosts, options.allHosts, top);
        });
        if (!rendered) return false;
        // Under plan nothing changes a role (watchRoles checks nothing then either).
        const split = ahead.roleChange && !run.options.check ? await splitBrainBeforeFirstChange(run, ahead.roleChange) : undefined;
        if (split) {
          this.tally.refuse(split);
          return false;
        }
      }
      if (step.include !== undefined && !handler) {
        const completed = await runInclude(
          run,
          step,
          id,
          passedBy,
          (children, childPrefix, childGuardsOnly) => this.runSteps(children, childPrefix, false, childGuardsOnly),
          (s) => this.stepHosts(s, id),
        );
        if (!completed) stopped = true;
        if (!completed && step.rescue !== undefined) await runRescue(run, step, id, options.interrupt.aborted, (c, p, g) => this.runSteps(c, p, false, g));
        continue;
      }
      if (passedBy && !isGuard(step)) continue;
      if (!(await this.runStep(step, id, { steps, index, prefix }, handler))) stopped = true;
    }
    return !stopped;
  };

  /** Runs a check of the run's input before a step; false (the run refused, exit 2) when it throws. */
  private async inputHolds(check: () => Promise<void>): Promise<boolean> {
    try {
      await check();
      return true;
    } catch (e) {
      this.tally.refuseInput(toPgplayError(e));
      return false;
    }
  }

  /** After a failure or Ctrl-C only `cleanup: true` steps start (a drill's teardown). */
  private enterCleanup(): void {
    // The grace period would abort them too: a cleanup step keeps its own timeout, and a second Ctrl-C
    // still exits at once.
    if (this.options.interrupt.aborted && !this.cleanupSignal) this.run.signal = this.cleanupSignal = new AbortController().signal;
  }

  /** One step across its hosts; false when the run must stop after it. */
  private async runStep(step: Step, id: string, at: { steps: Step[]; index: number; prefix: string }, handler: boolean): Promise<boolean> {
    const { run, options } = this;
    const guard = isGuard(step);
    // A guard checks every host it names, --limit or not: what it protects is the whole cluster.
    const hosts = await run.withFacts(() => targetHosts(run, options.selectHosts, hostsStepMayRunOn(run, step, options.allHosts), step, id));
    if (hosts.length === 0) return true;
    // A guard's hosts outside --limit, or a host the run did not read at its start (engine/fact-hosts.ts):
    // no step runs on a host without its facts, nor on one whose facts contradict the inventory.
    const contradicted = await prepareStepHosts(run, hosts);
    if (contradicted) {
      contradicted.step ??= id;
      this.tally.refuse(contradicted);
      return false;
    }
    // An action that does not declare its reads may change a host by other ways than its transport.
    const declared = readsAreDeclared(run, step);
    if (!declared) run.readAheadCache.invalidate();
    const readAhead = declared ? windowByHost(readAheadWindow(run, at.steps, at.index, at.prefix), this.stepHosts) : undefined;
    run.emit(stepStartEvent(step, id, hosts, handler));
    const roles = await watchRoles(run, { ...step, id }, hosts);
    try {
      // A guard is never done: what it proved in the resumed run may have stopped being true.
      const priorOf = (host: string, index?: number) => (guard ? undefined : options.prior?.get(priorKey(id, host, handler, index)));
      const done = () => doneBefore(options.resumedFrom);
      const results = await mapLimit(hosts, run.options.forks, async (host): Promise<HostEntry[] | undefined> => {
        if (options.interrupt.aborted && step.cleanup !== true) return undefined;
        if (roles.refusal) return [{ result: roles.refusal }];
        if (step.loop !== undefined) {
          return runLoopOnHost(run, { ...step, id }, host, { interrupt: options.interrupt, prior: (index) => priorOf(host, index), done });
        }
        const prior = priorOf(host);
        if (prior || (!guard && run.options.alreadyDone?.has(`${id}@${host}`))) return [{ result: done(), prior }];
        return [{ result: await runStepOnHost(run, { ...step, id }, host, readAhead?.(host), {}, roles.reads.get(host)) }];
      });
      run.readAheadCache.stepFinished();
      let failed = false;
      // Whether any host may have changed something (a failure may come after a change): the invariant's read after the step.
      let changed = false;
      hosts.forEach((host, i) => {
        const entries = results[i];
        if (!entries) return;
        if (step.register) registerResults(run, { name: step.register, looped: step.loop !== undefined, step: id, host, handler }, entries, options.onRegistered);
        this.notifications.note(step, host, entries);
        for (const entry of entries) {
          if (entry.result.error) {
            entry.result.error.step ??= id;
            entry.result.error.host ??= host;
          }
          if (this.tally.count(host, entry)) failed = true;
          if (entry.result.status === 'changed' || entry.result.status === 'failed') changed = true;
          run.emit(stepResultEvent(step, id, host, handler, entry));
        }
      });
      const splitBrain = await roles.after(changed);
      if (splitBrain) {
        splitBrain.step ??= id;
        this.tally.refuse(splitBrain);
        return false;
      }
      return !failed;
    } finally {
      // Whatever ended the step: the watch reads nothing more for it (guards.ts).
      roles.dispose();
    }
  }
}

/** The hosts a step runs on: its `hosts` rendered (it may name a group or a registered value), within allHosts. */
export function targetHosts(run: RunContext, selectHosts: HostSelector, allHosts: string[], step: Step, id: string): string[] {
  const pattern = run.renderer.renderValue(step.hosts, globalScope(run.scopeSources()), `step ${id} hosts`);
  return selectHosts(pattern as string | string[]).filter((h) => allHosts.includes(h));
}

