/**
 * Issue 10: a drill's teardown runs after a failure or Ctrl-C (`cleanup: true` steps), and exit 2 ("nothing
 * was run") is never reported after a change was made.
 */
import { describe, expect, it } from 'vitest';
import { harness, results } from './support/engine-harness.js';

describe('cleanup steps', () => {
  it('run after a failed step (their when still decides); other steps do not', async () => {
    const h = harness(['db1'], (argv) => ({ exitCode: argv[0] === 'bad' ? 1 : 0 }));
    const outcome = await h.run({
      steps: [
        { id: 'make', hosts: 'db1', run: { argv: ['make'] }, register: 'made' },
        { id: 'breaks', hosts: 'db1', run: { argv: ['bad'] } },
        { id: 'never', hosts: 'db1', run: { argv: ['never'] } },
        { id: 'not-needed', hosts: 'db1', when: 'not defined(made)', cleanup: true, run: { argv: ['nope'] } },
        { id: 'teardown', hosts: 'db1', when: 'defined(made)', cleanup: true, run: { argv: ['teardown'] } },
      ],
    });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['make@db1=changed', 'breaks@db1=failed', 'not-needed@db1=skipped', 'teardown@db1=changed']);
    expect(h.events.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', error: { step: 'breaks' } });
  });

  it('run after Ctrl-C, with a signal the grace period does not abort, and the run still exits 130', async () => {
    const controller = new AbortController();
    const seen: boolean[] = [];
    const h = harness(['db1'], async (argv, options) => {
      if (argv[0] === 'long') controller.abort();
      if (argv[0] === 'teardown') seen.push(options?.signal?.aborted ?? false);
      return { exitCode: 0 };
    });
    const outcome = await h.run(
      {
        steps: [
          { id: 'long', hosts: 'db1', run: { argv: ['long'] } },
          { id: 'next', hosts: 'db1', run: { argv: ['next'] } },
          { id: 'teardown', hosts: 'db1', cleanup: true, run: { argv: ['teardown'] } },
        ],
      },
      {},
      { signal: controller.signal },
    );
    expect(outcome.exitCode).toBe(130);
    expect(results(h.events)).toEqual(['long@db1=changed', 'teardown@db1=changed']);
    expect(seen).toEqual([false]);
  });
});

describe('exit 2 means nothing ran', () => {
  // What the first step registers is known only when it has run: a step reading a key it lacks fails then
  // (a value the run can know up front is refused before the first change: engine-preflight-render.test.ts).
  const steps = (first: string) => [
    { id: 'first', hosts: 'db1', run: { argv: [first] }, register: 'first' },
    { id: 'bad-template', hosts: 'db1', run: { argv: ['{{first.no_such_value}}'] } },
  ];

  it('bad input met before any change is exit 2', async () => {
    const h = harness(['db1'], () => ({ exitCode: 0 }));
    const outcome = await h.run({ steps: [{ id: 'bad-template', hosts: 'db1', run: { argv: ['{{no_such_value}}'] } }] });
    expect(outcome.exitCode).toBe(2);
    expect(outcome.status).toBe('invalid');
  });

  it('bad input met after a change is a failed run (exit 1), resumable', async () => {
    const h = harness(['db1'], () => ({ exitCode: 0 }));
    const outcome = await h.run({ steps: steps('change') });
    expect(results(h.events)).toEqual(['first@db1=changed', 'bad-template@db1=failed']);
    expect(outcome.exitCode).toBe(1);
    expect(outcome.status).toBe('failed');
    expect(outcome.error?.message).toContain('no_such_value');
  });

  it('under check mode nothing changed: still exit 2', async () => {
    const h = harness(['db1'], () => ({ exitCode: 0 }));
    const outcome = await h.run({ steps: steps('change') }, { check: true });
    expect(outcome.exitCode).toBe(2);
  });
});
