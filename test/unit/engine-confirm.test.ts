import { describe, expect, it } from 'vitest';
import { harness } from './support/engine-harness.js';

/** A check may ask for confirmation before anything changes, and one keyed yes covers the later step. */
describe('confirmations asked by a check', () => {
  const steps = [
    { id: 'gate', hosts: 'db1', gate: { changes: false } },
    { id: 'write', hosts: 'db1', run: { argv: ['write-settings'] } },
    { id: 'restart', hosts: 'db1', gate: { changes: true } },
  ];

  it('without a terminal and without --yes the run refuses at the gate (exit 3): no later step runs', async () => {
    const h = harness(['db1']);
    const outcome = await h.run({ steps });
    expect(outcome.exitCode).toBe(3);
    expect(h.calls.filter((c) => c.kind === 'exec')).toEqual([]);
    expect(h.events.at(-1)).toMatchObject({ status: 'refused', error: { code: 'GUARD', message: 'not confirmed: restart db1' } });
  });

  it('one yes at the gate answers the restart that asks with the same key; plan asks nothing', async () => {
    const h = harness(['db1']);
    const questions: string[] = [];
    const outcome = await h.run({ steps }, {}, { ask: async (q) => (questions.push(q), true) });
    expect(outcome.exitCode).toBe(0);
    expect(questions).toEqual(['restart db1\nProceed with step gate on db1?']);
    expect(h.calls.filter((c) => c.kind === 'exec').map((c) => c.argv)).toEqual([['write-settings']]);

    const plan = harness(['db1']);
    expect((await plan.run({ steps }, { check: true })).exitCode).toBe(0);
  });
});
