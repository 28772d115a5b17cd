import type { IncludeInput, Step } from '../model/playbook.js';
import { inIncludedPlaybook } from './include.js';
import type { RunContext } from './run-context.js';
import { globalScope } from './scope.js';

/** Deeper than this, an include chain is not followed: every host is read. */
const MAX_INCLUDE_DEPTH = 16;

/**
 * The hosts whose facts a run reads at its start, all at once: those its steps and handlers run on,
 * the steps of the playbooks they include too (with the params the include gives them), within
 * `involved`; each is handed to `found` as soon as it is known (the top playbook's first steps before
 * any include is loaded), so that its read starts while the rest is worked out. It decides only what is
 * read together up front: any other host's facts are read when a value or an action reads them
 * (RunContext.withFacts, ActionContext.factsOf), and a host a step runs on is read before that step if
 * it was not (guards.ts: prepareStepHosts). When the hosts of some step cannot be told before the run
 * (they read facts or a register, an include's file or params do, or a step names no hosts), every
 * involved host is found, as before the first step it always was read.
 */
export async function findHostsNeedingFacts(run: RunContext, involved: string[], stepHosts: (step: Step, id: string) => string[], found: (host: string) => void): Promise<void> {
  // A handler without hosts runs on the hosts that notified it, which steps run on.
  const handlers = Object.entries(run.playbook.handlers ?? {})
    .filter(([, handler]) => handler.hosts !== undefined)
    .map(([id, handler]) => ({ ...handler, id }) as Step);
  try {
    // stepHosts keeps each step within the hosts it may run on (--limit, but every host for a guard).
    await collect(run, [...run.playbook.steps, ...handlers], undefined, found, stepHosts, 0);
  } catch {
    involved.forEach((h) => found(h));
  }
}

/** Hands the hosts `steps` run on to `touch`; throws when one cannot be told. Run's params, vars and directory are the steps' playbook's. */
async function collect(run: RunContext, steps: Step[], inherited: Step['hosts'] | undefined, touch: (host: string) => void, stepHosts: (step: Step, id: string) => string[], depth: number): Promise<void> {
  for (const [i, step] of steps.entries()) {
    const id = step.id ?? `#${i + 1}`;
    const hosts = (step.hosts as Step['hosts'] | undefined) ?? inherited;
    if (hosts === undefined) throw new Error(`step ${id} names no hosts`);
    if (step.include === undefined) {
      for (const h of stepHosts({ ...step, hosts }, id)) touch(h);
      continue;
    }
    // As include.ts enters it: the include's hosts and params rendered in the includer's scope, then the
    // included steps with its params and vars. A value that reads facts throws here: every host is read.
    const input = step.include as IncludeInput;
    if (depth >= MAX_INCLUDE_DEPTH || typeof input.playbook !== 'string' || input.playbook.includes('{{')) throw new Error(`step ${id}: include not followed`);
    const scope = globalScope(run.scopeSources());
    const childHosts = run.renderer.renderValue(hosts, scope, `step ${id} hosts`) as Step['hosts'];
    const params = run.renderer.renderValue(input.params ?? {}, scope, `step ${id}`) as Record<string, unknown>;
    if (!run.deps.loadInclude) throw new Error('include is not available here');
    const child = await run.deps.loadInclude(input.playbook, run.playbookDir);
    await inIncludedPlaybook(
      run,
      child,
      { playbook: input.playbook, params },
      async (vars) => run.renderer.renderValue(vars, globalScope(run.scopeSources()), `${id}: vars`) as Record<string, unknown>,
      () => collect(run, child.steps, childHosts, touch, stepHosts, depth + 1),
    );
  }
}
