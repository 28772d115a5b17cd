import { PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import type { Action } from './types.js';

export interface AssertInput {
  that: string | string[];
  msg?: string;
  /** A false condition means the topology contradicts the playbook: refuse (exit 3) rather than fail (exit 1). */
  refuse?: boolean;
  /**
   * Once every condition holds, a human (or --yes) must confirm before the run goes on: the gate in
   * front of a disruptive sequence whose pre-checks then run again (switchover.yml).
   */
  confirm?: string;
}

/** Stops the run unless every condition over facts and registered results holds. Read-only. */
export const assertAction: Action<AssertInput> = {
  name: 'assert',
  // Reads only.
  changes: [],
  summary: 'Fails the step unless every expression in `that` is true (conditions over facts, params and registered results).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['that'],
    properties: {
      that: {
        description: 'One expression or a list; all must be true.',
        anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
      },
      msg: { type: 'string', description: 'The message when an expression is false.' },
      refuse: {
        type: 'boolean',
        default: false,
        description:
          'true: a false condition is a safety refusal (exit 3: the facts contradict what the playbook is about to do), not a failed step (exit 1).',
      },
      confirm: {
        type: 'string',
        minLength: 1,
        description:
          'Once the conditions hold, ask this question before the run goes on (--yes answers; without a terminal and without --yes the run is refused, exit 3): a gate in front of a disruptive sequence, whose pre-checks may run again after it. Plan does not ask.',
      },
    },
  },
  readOnly: () => true,
  confirmation: (input) => (input.confirm ? `asks before the run goes on: "${input.confirm.replace(/\s+/g, ' ').trim()}"` : undefined),
  async check(ctx, input) {
    const conditions = Array.isArray(input.that) ? input.that : [input.that];
    for (const condition of conditions) {
      if (!(await ctx.withFacts(() => evaluateCondition(condition, ctx.scope())))) {
        throw new PgplayError({
          code: input.refuse ? 'GUARD' : 'STEP_FAILED',
          message: input.msg ? `${input.msg} (${condition} is false)` : `assertion failed: ${condition}`,
        });
      }
    }
    const msg = `${conditions.length} condition(s) hold`;
    return input.confirm ? { changed: false, msg, confirm: { message: input.confirm } } : { changed: false, msg };
  },
  async apply() {
    return { changed: false };
  },
  // A check only: the script says what pgplay would have refused on.
  async exportShell(_ctx, input) {
    const conditions = Array.isArray(input.that) ? input.that : [input.that];
    return { comments: [...conditions.map((c) => `check: ${c.replace(/\s+/g, ' ')}`), ...(input.msg ? [`  else: ${input.msg.replace(/\s+/g, ' ')}`] : [])] };
  },
};

export default assertAction;
