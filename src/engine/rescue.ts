import type { IncludeInput, Step } from '../model/playbook.js';
import { runInclude } from './include.js';
import type { RunContext } from './run-context.js';

type RunSteps = (steps: Step[], prefix: string, guardsOnly: boolean) => Promise<boolean>;

/**
 * `rescue:` on an include step: the included playbook is a section that must not be left half done
 * (switchover.yml: from the primary's shutdown to the candidate's promotion). When a step of the section
 * fails, is refused, or the run is interrupted in it, the rescue playbook runs (reported as
 * `<id>/rescue/<step>`) to put things back as they were; the run still ends failed, with the section's
 * error: what the playbook set out to do did not happen.
 *
 * Rescue steps are never skipped: they run as guards (whatever --from, --tags, --limit say, and again
 * under --resume, where a rescue that succeeded before may be needed again), and after Ctrl-C as
 * cleanup steps. Within the rescue a failed step stops the steps after it, as anywhere (they would act
 * on a state the failed step did not bring about). A section skipped by its `when` needs no rescue.
 */
/** The include a section's rescue runs as: the rescue playbook, on the section's hosts, reported under `<id>/rescue`. */
export function rescueStepOf(step: Step): Step {
  return { id: step.id, hosts: step.hosts, include: step.rescue as IncludeInput };
}

export async function runRescue(run: RunContext, step: Step, id: string, interrupted: boolean, runSteps: RunSteps): Promise<boolean> {
  return runInclude(run, rescueStepOf(step), `${id}/rescue`, false, (children, prefix) =>
    runSteps(
      children.map((c) => ({ ...c, guard: true, cleanup: interrupted || c.cleanup === true })),
      prefix,
      false,
    ),
  );
}
