import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import { resolveParams } from '../load/params.js';
import type { IncludeInput, Step } from '../model/playbook.js';
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
  const items = selectHosts(step).flatMap((host) => loopItems(run, step, host));
  for (const [index, item] of items.entries()) {
    if (!(await enter(run, step, id, `${id}[${index}]/`, guardsOnly, runSteps, { item, item_index: index }))) return false;
  }
  return true;
}

/** The directory of the playbook whose steps run now, while an include runs (the top playbook's otherwise). */
const includingDir = new WeakMap<RunContext, string>();

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
  if (step.when !== undefined && !evaluateCondition(step.when, scope())) return true;
  const input = includeInput(run.renderer.renderValue(step.include, scope(), `step ${id}`), id);
  if (!run.deps.loadInclude) throw new PgplayError({ code: 'SEMANTIC', message: 'include is not available here', step: id });
  // A path is relative to the playbook that holds the include (as the loader checked it): an included
  // playbook's own includes resolve beside it (include/standby-build.yml includes pgbackrest-conf.yml).
  const fromDir = includingDir.get(run) ?? run.playbookDir;
  const child = await run.deps.loadInclude(input.playbook, fromDir);
  // Passed by (--from, --tags): an include is entered only for the guards it holds.
  if (guardsOnly && !child.steps.some(isGuard)) return true;
  const saved = run.params;
  const savedVars = run.vars;
  includingDir.set(run, dirname(resolve(fromDir, input.playbook)));
  // Included params are checked like -p values: typed, defaulted, unknown ones rejected.
  const given = Object.fromEntries(Object.entries(input.params ?? {}).map(([k, v]) => [k, String(v)]));
  run.params = resolveParams(child.params, given);
  try {
    // The included playbook's own vars, rendered with its params, as its steps were written against them.
    if (child.vars) run.vars = { ...savedVars, ...run.renderer.renderValue(child.vars, globalScope(run.scopeSources()), `${id}: vars`) };
    return await runSteps(
      child.steps.map((s) => ({ ...s, hosts: s.hosts ?? step.hosts })),
      prefix,
      guardsOnly,
    );
  } finally {
    run.params = saved;
    run.vars = savedVars;
    includingDir.set(run, fromDir);
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
