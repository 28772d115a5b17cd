import { describe, expect, it } from 'vitest';
import type { Step } from '../../src/model/playbook.js';
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

/** assert's confirm: a gate in front of a disruptive sequence (switchover.yml), asked only once its conditions hold. */
describe('assert with confirm', () => {
  const steps = (that: string) => [
    { id: 'gate', hosts: 'db1', assert: { that, confirm: 'switch over from db1 to db2' } },
    { id: 'after', hosts: 'db1', run: { argv: ['shutdown'] } },
  ];
  const withAssert = async (that: string, options: Parameters<ReturnType<typeof harness>['run']>[1] = {}, ask?: (q: string) => Promise<boolean>) => {
    const { assertAction } = await import('../../src/actions/assert.js');
    const h = harness(['db1'], () => ({ exitCode: 0 }), 0, [], undefined, { actions: [assertAction] });
    return { h, outcome: await h.run({ steps: steps(that) }, options, { ask }) };
  };

  it('asks when the conditions hold; no answer without a terminal refuses (exit 3) before the next step', async () => {
    const { h, outcome } = await withAssert('true');
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error).toMatchObject({ code: 'GUARD', message: 'not confirmed: switch over from db1 to db2' });
    expect(h.calls.filter((c) => c.kind === 'exec')).toEqual([]);
  });

  it('a yes lets the run go on; --yes asks nothing; plan asks nothing', async () => {
    const questions: string[] = [];
    const yes = await withAssert('true', {}, async (q) => (questions.push(q), true));
    expect(yes.outcome.exitCode).toBe(0);
    expect(questions).toEqual(['switch over from db1 to db2\nProceed with step gate on db1?']);
    expect(yes.h.calls.filter((c) => c.kind === 'exec').map((c) => c.argv)).toEqual([['shutdown']]);
    expect((await withAssert('true', { yes: true })).outcome.exitCode).toBe(0);
    expect((await withAssert('true', { check: true })).outcome.exitCode).toBe(0);
  });

  it('a false condition fails without asking', async () => {
    const questions: string[] = [];
    const { outcome } = await withAssert('false', {}, async (q) => (questions.push(q), true));
    expect(outcome.exitCode).toBe(1);
    expect(questions).toEqual([]);
  });
});

/** What an action is told of --yes (ActionContext.assumeYes): whether a human may be asked between its check and apply. */
describe('an action knows whether the run answers confirmations itself', () => {
  it('assumeYes is true under --yes and false without', async () => {
    const seen: unknown[] = [];
    const noting = { name: 'noting', schema: { type: 'object' }, check: async (ctx: { assumeYes?: boolean }) => (seen.push(ctx.assumeYes), { changed: false, msg: 'noted' }), apply: async () => ({ changed: false }) };
    for (const yes of [true, false]) {
      const h = harness(['db1'], () => ({ exitCode: 0 }), 0, [], undefined, { actions: [noting as never] });
      expect((await h.run({ steps: [{ id: 'note', hosts: 'db1', noting: {} }] }, { yes })).exitCode).toBe(0);
    }
    expect(seen).toEqual([true, false]);
  });
});

/**
 * confirm_key: a gate before a sequence (standby-build.yml's confirm-build) and the destructive steps of
 * that sequence share one confirmation per host, so that the question, or the refusal without a terminal,
 * comes before the sequence changes anything (a standby stopped, then its restore refused, was the bug).
 */
describe('confirm_key: one confirmation for a sequence, per host', () => {
  const sequence = (restoreHosts: string | string[] = 'db1', restoreKey: string | null = 'restore') => [
    { id: 'gate', hosts: 'db1', confirm_key: 'restore', assert: { that: 'true', confirm: 'db1 must be rebuilt' } },
    { id: 'stop', hosts: 'db1', run: { argv: ['stop'] } },
    { id: 'restore', hosts: restoreHosts, ...(restoreKey ? { confirm_key: restoreKey } : {}), guarded: {} },
  ];
  const runWith = async (steps: Step[], options: Parameters<ReturnType<typeof harness>['run']>[1] = {}, ask?: (q: string) => Promise<boolean>) => {
    const { assertAction } = await import('../../src/actions/assert.js');
    const h = harness(['db1', 'db2'], () => ({ exitCode: 0 }), 0, [], undefined, { actions: [assertAction] });
    return { h, outcome: await h.run({ steps }, options, { ask }) };
  };
  const execs = (h: ReturnType<typeof harness>) => h.calls.filter((c) => c.kind === 'exec').map((c) => c.argv);

  it('without a terminal and without --yes the run is refused at the gate (exit 3): the stop never runs', async () => {
    const { h, outcome } = await runWith(sequence());
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error).toMatchObject({ code: 'GUARD', message: 'not confirmed: db1 must be rebuilt', step: 'gate', host: 'db1' });
    expect(execs(h)).toEqual([]);
  });

  it('a human is asked once: the yes at the gate answers the restore with the same key on the same host', async () => {
    const questions: string[] = [];
    const { h, outcome } = await runWith(sequence(), {}, async (q) => (questions.push(q), true));
    expect(outcome.exitCode).toBe(0);
    expect(questions).toEqual(['db1 must be rebuilt\nProceed with step gate on db1?']);
    expect(execs(h)).toEqual([['stop']]);
    expect(h.events.filter((e) => e.type === 'step-result' && e.step === 'restore').map((e) => (e as { status: string }).status)).toEqual(['changed']);
  });

  it('the key is per host, and a destructive step without the key still asks for itself', async () => {
    const perHost: string[] = [];
    const other = await runWith(sequence(['db1', 'db2']), {}, async (q) => (perHost.push(q), true));
    expect(other.outcome.exitCode).toBe(0);
    expect(perHost).toEqual(['db1 must be rebuilt\nProceed with step gate on db1?', 'restore is destructive on db2\nProceed with step restore on db2?']);

    const unkeyed: string[] = [];
    const plain = await runWith(sequence('db1', null), {}, async (q) => (unkeyed.push(q), true));
    expect(plain.outcome.exitCode).toBe(0);
    expect(unkeyed).toEqual(['db1 must be rebuilt\nProceed with step gate on db1?', 'restore is destructive on db1\nProceed with step restore on db1?']);
  });

  it("the step's key replaces the action's own: a restart keyed restore is answered by the gate, not by a yes to restart", async () => {
    const steps: Step[] = [
      { id: 'gate', hosts: 'db1', confirm_key: 'restore', assert: { that: 'true', confirm: 'db1 must be rebuilt' } },
      { id: 'restart', hosts: 'db1', confirm_key: 'restore', gate: { changes: true } },
    ] as Step[];
    const questions: string[] = [];
    const { outcome } = await runWith(steps, {}, async (q) => (questions.push(q), true));
    expect(outcome.exitCode).toBe(0);
    expect(questions).toEqual(['db1 must be rebuilt\nProceed with step gate on db1?']);
  });

  it('--yes asks nothing and runs the sequence; plan asks nothing and changes nothing', async () => {
    const yes = await runWith(sequence(), { yes: true }, async () => {
      throw new Error('asked under --yes');
    });
    expect(yes.outcome.exitCode).toBe(0);
    expect(execs(yes.h)).toEqual([['stop']]);
    const plan = await runWith(sequence(), { check: true });
    expect(plan.outcome.exitCode).toBe(0);
    expect(execs(plan.h)).toEqual([]);
  });
});
