import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { harness } from './support/engine-harness.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

function itemResults(events: RunEvent[]): string[] {
  return events
    .filter((e): e is StepResult => e.type === 'step-result')
    .map((e) => `${e.step}@${e.host}${e.index === undefined ? '' : `[${e.index}]`}=${e.status}`);
}

describe('loop in the engine', () => {
  it('runs the items one after another on each host, per host list, with item and item_index', async () => {
    const h = harness(['db1', 'db2']);
    const outcome = await h.run({
      steps: [
        { id: 'each', hosts: 'all', loop: ['a', 'b'], run: { argv: ['echo', '{{item_index}}-{{item}}-{{host.name}}'] }, register: 'looped' },
        { id: 'after', hosts: 'db1', when: 'length(looped.results) == 2', run: { argv: ['count', '{{looped.results.1.item}}', '{{looped.results.1.item_index}}', '{{looped.changed}}'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    expect(itemResults(h.events)).toEqual(['each@db1[0]=changed', 'each@db1[1]=changed', 'each@db2[0]=changed', 'each@db2[1]=changed', 'after@db1=changed']);
    const argvs = h.calls.filter((c) => c.argv).map((c) => `${c.host}: ${c.argv!.join(' ')}`);
    expect(argvs).toEqual(expect.arrayContaining(['db1: echo 0-a-db1', 'db1: echo 1-b-db1', 'db2: echo 0-a-db2', 'db2: echo 1-b-db2', 'db1: count b 1 true']));
  });

  it('a failing item does not stop the others; the step fails on that host and the run stops after it', async () => {
    const h = harness(['db1'], (argv) => (argv[1] === 'bad' ? { exitCode: 1, stderr: 'no' } : { exitCode: 0 }));
    const outcome = await h.run({
      steps: [
        { id: 'each', hosts: 'db1', loop: ['ok1', 'bad', 'ok2'], run: { argv: ['x', '{{item}}'] } },
        { id: 'never', hosts: 'db1', run: { argv: ['never'] } },
      ],
    });
    expect(outcome.exitCode).toBe(1);
    expect(itemResults(h.events)).toEqual(['each@db1[0]=changed', 'each@db1[1]=failed', 'each@db1[2]=changed']);
    expect(outcome.recap.db1).toMatchObject({ changed: 2, failed: 1 });
  });

  it('a refusal stops the items that remain (exit 3)', async () => {
    const h = harness(['db1']);
    const outcome = await h.run({ steps: [{ id: 'each', hosts: 'db1', loop: [false, true, false], guarded: { refuse: '{{item}}' } }] }, { yes: true });
    expect(outcome.exitCode).toBe(3);
    expect(itemResults(h.events)).toEqual(['each@db1[0]=changed', 'each@db1[1]=failed']);
  });

  it('an empty list skips the step; a changed item notifies the handler, which may loop too', async () => {
    const h = harness(['db1']);
    const outcome = await h.run({
      steps: [
        { id: 'none', hosts: 'db1', loop: [], run: { argv: ['never'] }, register: 'none' },
        { id: 'some', hosts: 'db1', loop: '{{vars_list}}', run: { argv: ['x', '{{item}}'] }, notify: ['reload'], when: 'not none.changed' },
      ],
      handlers: { reload: { loop: ['p', 'q'], run: { argv: ['reload', '{{item}}'] } } },
    });
    expect(outcome.exitCode).toBe(2);
    // `{{vars_list}}` is unknown: the loop cannot render, which refuses the run before its first step (invalid input).
    expect(itemResults(h.events)).toEqual([]);
    expect(outcome.error?.message).toContain('step some on db1');

    const h2 = harness(['db1']);
    const ok = await h2.run({
      steps: [{ id: 'some', hosts: 'db1', loop: ['a'], run: { argv: ['x', '{{item}}'] }, notify: ['reload'] }],
      handlers: { reload: { loop: ['p', 'q'], run: { argv: ['reload', '{{item}}'] } } },
    });
    expect(ok.exitCode).toBe(0);
    expect(itemResults(h2.events)).toEqual(['some@db1[0]=changed', 'reload@db1[0]=changed', 'reload@db1[1]=changed']);
  });
});
