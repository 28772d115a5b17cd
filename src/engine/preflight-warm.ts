import { dirname, resolve } from 'node:path';
import type { IncludeInput, Step } from '../model/playbook.js';
import { loadInputValidator } from './input.js';
import type { RunContext } from './run-context.js';
import { templateRefs } from './template-refs.js';

/**
 * The part of the pre-flight render (preflight-render.ts) that needs no facts, done while the facts are
 * read: the hosts work on their facts scripts and this process would only wait. It loads every
 * included playbook named by a plain file name (loading validates it: the validators and the cached
 * parse are then loaded for the pre-flight and the run), reads the template references of every
 * step (parsed once per text, template-refs.ts) and loads the generated validator of each step's action
 * input (a module each, which the pre-flight would otherwise load on its way, after the facts). When a
 * step's action connects to PostgreSQL, the client library is loaded too (Action.connects), which the
 * first such step would otherwise wait for.
 * It decides nothing and reports nothing: whatever fails here fails again in the pre-flight, which
 * reports it at its step, so a run refuses exactly as before. Resolves whether a step it saw connects.
 */
export async function warmPreflight(run: RunContext): Promise<boolean> {
  const seen = new Set<string>();
  let connects = false;
  const walk = async (steps: Step[], dir: string): Promise<void> => {
    for (const step of steps) {
      // Let the facts' answers be taken as they come, between the pieces of this CPU work.
      await new Promise((resolve) => setImmediate(resolve));
      try {
        templateRefs(step);
      } catch {
        // The pre-flight meets it again and reports it.
      }
      if (!connects && run.actionDeclares(step, 'connects')) {
        connects = true;
        await run.deps.prepareConnections?.();
      }
      const include = step.include as IncludeInput | undefined;
      if (!include) {
        try {
          loadInputValidator(run.actionOf(step).action);
        } catch {
          // As above: a step without a known action is reported by the pre-flight.
        }
        continue;
      }
      if (typeof include.playbook !== 'string' || include.playbook.includes('{{') || !run.deps.loadInclude) continue;
      const file = resolve(dir, include.playbook);
      if (seen.has(file)) continue;
      seen.add(file);
      try {
        const child = await run.deps.loadInclude(include.playbook, dir);
        templateRefs(child.vars);
        await walk(child.steps, dirname(file));
      } catch {
        // As above: the pre-flight (or the include step) reports it.
      }
    }
  };
  await walk([...run.playbook.steps, ...(Object.values(run.playbook.handlers ?? {}) as Step[])], run.playbookDir);
  return connects;
}
