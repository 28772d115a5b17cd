/**
 * `unreachable: tolerate`: a step that expects its host may be gone (promote.yml fencing a dead primary)
 * records the host as unreachable instead of failing. Only a host the transport could not connect to at
 * all counts (PgplayError.unreachable, set by the transport at connect: refused, timed out, no route); an
 * authentication or host-key failure, or any failure of the action itself, still fails the step.
 *
 * The step is then skipped on that host (its `when` is not consulted: it could only read facts nobody
 * could gather) and registers `unreachable: true` with the reason, for later steps' `when`s and asserts.
 */
import type { PgplayError } from '../core/errors.js';
import type { Step } from '../model/playbook.js';
import type { Outcome } from './action.js';

export type UnreachablePolicy = 'fail' | 'tolerate';

/** The result a step that tolerates it reports for an unreachable host; undefined when the step must fail. */
export function toleratedUnreachable(step: Step, error: PgplayError | undefined): { status: 'skipped'; outcome: Outcome } | undefined {
  if (step.unreachable !== 'tolerate' || !error?.unreachable) return undefined;
  return {
    status: 'skipped',
    outcome: {
      changed: false,
      skipped: true,
      msg: `host is unreachable (tolerated by the step): ${error.message}`,
      data: { unreachable: true, unreachable_reason: error.message },
    },
  };
}

/** Whether a result is a tolerated unreachable host (the recap counts it as unreachable, not as failed). */
export function isToleratedUnreachable(result: { outcome?: Outcome }): boolean {
  return result.outcome?.data?.unreachable === true;
}
