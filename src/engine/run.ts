import { EXIT, PgplayError } from '../core/errors.js';
import type { Step } from '../model/playbook.js';
import type { RecapCounts, RunEvent, StepStatus } from './events.js';
import { mapLimit } from './pool.js';
import type { RunContext } from './run-context.js';
import { globalScope } from './scope.js';
import { registeredValue, runStepOnHost, toPgplayError, type HostStepResult } from './step.js';

export interface RunOutcome {
  exitCode: number;
  status: Extract<RunEvent, { type: 'run-end' }>['status'];
  recap: Record<string, RecapCounts>;
  error?: PgplayError;
}

export type HostSelector = (pattern: string | string[]) => string[];

/**
 * Runs the playbook's steps in order. Each step fans out over its hosts (up to --forks); a step that
 * fails on any host (without ignore_errors) ends the run after that step completes everywhere, because
 * DR procedures are sequential across hosts: building a standby after a failed restore helps nobody.
 * Handlers notified by changed steps run once at the end, in the order they are defined.
 */
export async function executeRun(run: RunContext, selectHosts: HostSelector): Promise<RunOutcome> {
  const started = Date.now();
  const recap: Record<string, RecapCounts> = {};
  const notified = new Map<string, Set<string>>();
  let failure: PgplayError | undefined;
  let refused = false;

  const allHosts = Object.keys(run.hosts).filter((h) => !run.options.limit || run.options.limit.includes(h));
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

  const runSteps = async (steps: Step[], prefix: string, handler: boolean): Promise<boolean> => {
    let reachedFrom = !run.options.from || prefix !== '';
    for (const step of steps) {
      const id = prefix + step.id;
      if (!reachedFrom) {
        if (id !== run.options.from) continue;
        reachedFrom = true;
      }
      if (run.signal.aborted) return false;
      if (!tagsMatch(step, run.options.tags)) continue;
      if (step.include !== undefined && !handler) {
        if (!(await runInclude(step, id))) return false;
        continue;
      }
      const hosts = stepHosts(step, id);
      if (hosts.length === 0) continue;
      run.emit({ type: 'step-start', step: id, name: step.name ?? step.id, hosts, handler, time: new Date().toISOString() });
      const results = await mapLimit(hosts, run.options.forks, async (host) => {
        if (run.signal.aborted) return undefined;
        if (run.options.alreadyDone?.has(`${id}@${host}`)) {
          const skipped: HostStepResult = { status: 'skipped', outcome: { changed: false, skipped: true, msg: 'done in the resumed run' }, attempts: 0, durationMs: 0 };
          return skipped;
        }
        return runStepOnHost(run, { ...step, id }, host);
      });
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
        if (step.register) (run.registered[host] ??= {})[step.register] = registeredValue(result);
        if (result.status === 'changed') {
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
      if (stepFailed) return false;
    }
    return true;
  };

  const stepHosts = (step: Step, id: string): string[] => {
    const pattern = run.renderer.renderValue(step.hosts, globalScope(run.scopeSources()), `step ${id} hosts`);
    return selectHosts(pattern as string | string[]).filter((h) => allHosts.includes(h));
  };

  const runInclude = async (step: Step, id: string): Promise<boolean> => {
    const input = run.renderer.renderValue(step.include, globalScope(run.scopeSources()), `step ${id}`) as {
      playbook: string;
      params?: Record<string, unknown>;
    };
    if (!run.deps.loadInclude) throw new PgplayError({ code: 'SEMANTIC', message: 'include is not available here', step: id });
    const child = await run.deps.loadInclude(input.playbook, run.playbookDir);
    const saved = run.params;
    run.params = { ...defaultsOf(child.params), ...(input.params ?? {}) };
    try {
      return await runSteps(
        child.steps.map((s) => ({ ...s, hosts: s.hosts ?? step.hosts })),
        `${id}/`,
        false,
      );
    } finally {
      run.params = saved;
    }
  };

  let completed = false;
  try {
    completed = await runSteps(run.playbook.steps, '', false);
    if (completed && !run.signal.aborted) {
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
  }

  const interrupted = run.signal.aborted;
  const status: RunOutcome['status'] = interrupted
    ? 'interrupted'
    : refused
      ? 'refused'
      : failure
        ? failure.exitCode === EXIT.INVALID ? 'invalid' : 'failed'
        : 'ok';
  const exitCode = interrupted ? EXIT.INTERRUPTED : failure ? failure.exitCode : EXIT.OK;
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

function tagsMatch(step: Step, tags: string[] | undefined): boolean {
  if (!tags || tags.length === 0) return true;
  const own = step.tags ?? [];
  return own.includes('always') || own.some((t) => tags.includes(t));
}

function defaultsOf(params: Record<string, { default?: unknown }> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, def] of Object.entries(params ?? {})) if (def.default !== undefined) out[k] = def.default;
  return out;
}
