/**
 * The pre-flight render (engine/preflight-render.ts) checks the steps a run will reach, and the scheduler
 * (engine/schedule.ts) runs them: both select steps by one rule (engine/selection.ts selectSteps), so
 * they cannot disagree. The same playbook and the same selection (--from, --tags, a resumed run's, none)
 * go to both: the steps the pre-flight checked (validateInput, which only it calls) are exactly the steps
 * that ran, guards of includes that --from or --tags pass by included, and notified handlers under --from.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/engine/action.js';
import type { Playbook, Step } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

function probe(checked: string[]): Action<{ name: string }> {
  return {
    name: 'probe',
    summary: 'test: records what the pre-flight checked',
    schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
    changes: [],
    validateInput(input, where) {
      checked.push(`${input.name}@${where.host.name}`);
    },
    async check() {
      return { changed: true };
    },
    async apply() {
      return { changed: true };
    },
  };
}

const step = (id: string, more: Partial<Step> = {}): Step => ({ id, hosts: 'db1', probe: { name: id }, ...more }) as unknown as Step;

const inner: Playbook = {
  name: 'inner',
  steps: [step('inner-guard', { guard: true }), step('i1'), step('i2', { tags: ['x'] })],
};
const noGuards: Playbook = { name: 'plain', steps: [step('p1')] };

const playbook: Playbook = {
  name: 'procedure',
  steps: [
    step('g1', { guard: true }),
    step('a', { tags: ['x'] }),
    { id: 'inc', hosts: 'db1', include: { playbook: 'inner.yml' } } as Step,
    { id: 'plain', hosts: 'db1', include: { playbook: 'plain.yml' } } as Step,
    step('b', { notify: ['h'] }),
    step('c', { tags: ['x'] }),
  ],
  handlers: { h: { hosts: 'db1', probe: { name: 'h' } } as never },
};

/** Ids as the probe names them (step-results use the include path, the probe its own name). */
const bare = (ids: string[]) => ids.map((r) => r.replace(/^.*\//, '').replace(/@.*$/, ''));

describe('the pre-flight checks exactly the steps the scheduler runs', () => {
  const selections: Array<[string, { from?: string; tags?: string[] }, string[]]> = [
    ['no selection', {}, ['g1', 'a', 'inner-guard', 'i1', 'i2', 'p1', 'b', 'c', 'h']],
    // The include before --from is passed by: its guard still runs; the handler b notifies runs.
    ['--from b', { from: 'b' }, ['g1', 'inner-guard', 'b', 'c', 'h']],
    ['--from inc/i2', { from: 'inc/i2' }, ['g1', 'inner-guard', 'i2', 'p1', 'b', 'c', 'h']],
    ['--tags x', { tags: ['x'] }, ['g1', 'a', 'inner-guard', 'c']],
    ['--from inc/i1 --tags x', { from: 'inc/i1', tags: ['x'] }, ['g1', 'inner-guard', 'c']],
  ];
  for (const check of [false, true]) {
    for (const [name, options, expected] of selections) {
      it(`${name}${check ? ' (plan)' : ''}`, async () => {
        const checked: string[] = [];
        const h = harness(['db1'], undefined, 0, [], undefined, { actions: [probe(checked)], includes: { 'inner.yml': inner, 'plain.yml': noGuards }, start: true });
        const outcome = await h.run(playbook, { ...options, check });
        expect(outcome.exitCode).toBe(0);
        const ran = bare(results(h.events));
        expect(ran).toEqual(expected);
        expect(checked.map((c) => c.replace(/@db1$/, ''))).toEqual(expected);
      });
    }
  }
});
