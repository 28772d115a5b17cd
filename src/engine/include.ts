import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import { resolveParams } from '../load/params.js';
import type { IncludeInput, Playbook, Step } from '../model/playbook.js';
import type { RunContext } from './run-context.js';
import { isGuard } from './guards.js';
import { loopItems } from './loop.js';
import { globalScope } from './scope.js';

/**
 * `include:` is the engine's, not an action's: it runs another playbook's steps in place, with that
 * playbook's own params, reporting them as `<include-id>/<step-id>`. It is not per host: its `when`
 * and input see params, vars, inventory and hosts (with their facts); the included steps without
 * `hosts` run on the include step's. Handlers cannot include (the loader rejects it). With `loop` the
 * playbook runs once per item (see runInclude).
 */
export async function runInclude(
  run: RunContext,
  step: Step,
  id: string,
  guardsOnly: boolean,
  runSteps: (steps: Step[], prefix: string, guardsOnly: boolean) => Promise<boolean>,
  selectHosts?: (step: Step) => string[],
): Promise<boolean> {
  if (step.loop === undefined || !selectHosts) return enter(run, step, id, `${id}/`, guardsOnly, runSteps, {});
  // A looped include runs the whole playbook once per item, one item after another, each under its own
  // prefix `<id>[<index>]/` (so the journal and --resume know every item's steps apart). The list is
  // rendered on each of the include's hosts, as a looped step's is (a registered list is per host).
  const items = await run.withFacts(() => selectHosts(step).flatMap((host) => loopItems(run, step, host)));
  for (const [index, item] of items.entries()) {
    if (!(await enter(run, step, id, `${id}[${index}]/`, guardsOnly, runSteps, { item, item_index: index }))) return false;
  }
  return true;
}

/** Runs the included playbook once; `extra` (a loop's item) is visible to the include's `when` and input. */
async function enter(
  run: RunContext,
  step: Step,
  id: string,
  prefix: string,
  guardsOnly: boolean,
  runSteps: (steps: Step[], prefix: string, guardsOnly: boolean) => Promise<boolean>,
  extra: Record<string, unknown>,
): Promise<boolean> {
  const scope = () => ({ ...globalScope(run.scopeSources()), ...extra });
  const when = step.when;
  if (when !== undefined && !(await run.withFacts(() => evaluateCondition(when, scope())))) return true;
  const input = includeInput(await run.withFacts(() => run.renderer.renderValue(step.include, scope(), `step ${id}`)), id);
  if (!run.deps.loadInclude) throw new PgplayError({ code: 'SEMANTIC', message: 'include is not available here', step: id });
  const child = await run.deps.loadInclude(input.playbook, run.playbookDir);
  // Passed by (--from, --tags): an include is entered only for the guards it holds.
  if (guardsOnly && !child.steps.some(isGuard)) return true;
  // Steps without hosts run on the include step's, rendered here in the includer's scope: its params
  // (e.g. {{params.host}}) are not the included playbook's.
  const inherited = step.hosts === undefined ? undefined : await run.withFacts(() => run.renderer.renderValue(step.hosts, scope(), `step ${id} hosts`) as Step['hosts']);
  return inIncludedPlaybook(
    run,
    child,
    input,
    (vars) => run.withFacts(() => run.renderer.renderValue(vars, globalScope(run.scopeSources()), `${id}: vars`) as Record<string, unknown>),
    () => runSteps(child.steps.map((s) => ({ ...s, hosts: s.hosts ?? inherited })), prefix, guardsOnly),
  );
}

/**
 * Runs `body` as inside the included playbook `child`, named by `input`: with the include's params
 * (checked like -p values: typed, defaulted, unknown ones rejected), the included playbook's directory
 * (its own includes and relative templates are relative to it) and its own vars, rendered by
 * `renderVars` with those params, in place of the includer's; they are put back however body ends.
 */
export async function inIncludedPlaybook<T>(
  run: RunContext,
  child: Playbook,
  input: IncludeInput,
  renderVars: (vars: Record<string, unknown>) => Promise<Record<string, unknown>>,
  body: () => Promise<T>,
): Promise<T> {
  const saved = { params: run.params, vars: run.vars, dir: run.playbookDir };
  run.params = resolveParams(child.params, Object.fromEntries(Object.entries(input.params ?? {}).map(([k, v]) => [k, String(v)])));
  try {
    run.playbookDir = dirname(resolve(saved.dir, input.playbook));
    if (child.vars) run.vars = { ...saved.vars, ...(await renderVars(child.vars)) };
    return await body();
  } finally {
    run.params = saved.params;
    run.vars = saved.vars;
    run.playbookDir = saved.dir;
  }
}

/** The rendered include input, checked: the loader saw it with its templates, not what they render to. */
function includeInput(rendered: unknown, id: string): IncludeInput {
  const input = rendered as Partial<IncludeInput> | null;
  const problem =
    typeof input?.playbook !== 'string' || input.playbook === ''
      ? 'include.playbook must render to a file name'
      : input.params !== undefined && (typeof input.params !== 'object' || input.params === null || Array.isArray(input.params))
        ? 'include.params must render to a mapping'
        : undefined;
  if (problem) throw new PgplayError({ code: 'RENDER', message: problem, expected: 'playbook: a path relative to this playbook; params: name: value', step: id });
  return input as IncludeInput;
}
