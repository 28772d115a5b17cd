/**
 * Issue 12 item 5: `rescue:` on an include step. The included playbook is a section (switchover.yml: the
 * primary's shutdown up to the promotion); when one of its steps fails, is refused or interrupted, the
 * rescue playbook puts back what it changed, and the run still ends failed with the section's error.
 */
import { describe, expect, it } from 'vitest';
import type { Playbook } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

const section = (failing: string): Playbook => ({
  name: 'section',
  steps: [
    { id: 'stop', hosts: 'db1', run: { argv: ['stop'] }, register: 'stopped' },
    { id: 'promote', hosts: 'db2', run: { argv: [failing] } },
    { id: 'after', hosts: 'db2', run: { argv: ['after'] } },
  ],
});
const undo: Playbook = {
  name: 'undo',
  params: { why: { type: 'string', required: true } },
  steps: [
    { id: 'start-again', hosts: 'db1', when: 'not hosts.db1.registered.stopped.skipped', run: { argv: ['start', '{{params.why}}'] } },
    { id: 'then', hosts: 'db1', run: { argv: ['then'] } },
  ],
};
const playbook = (extra: Record<string, unknown> = {}) => ({
  steps: [
    { id: 'cutover', hosts: 'all', include: { playbook: 'section.yml' }, rescue: { playbook: 'undo.yml', params: { why: 'cutover failed' } }, ...extra },
    { id: 'later', hosts: 'db1', run: { argv: ['later'] } },
  ],
});

describe('rescue: a section put back when it fails', () => {
  const run = (failing: string, handler: (argv: string[]) => { exitCode: number }, extra?: Record<string, unknown>) => {
    const h = harness(['db1', 'db2'], handler, 0, [], undefined, { includes: { 'section.yml': section(failing), 'undo.yml': undo } });
    return { h, outcome: h.run(playbook(extra)) };
  };

  it('a failed step of the section runs the rescue (with its params), reported as <id>/rescue/<step>; the run fails with the section error', async () => {
    const { h, outcome } = run('bad', (argv) => ({ exitCode: argv[0] === 'bad' ? 1 : 0 }));
    const o = await outcome;
    expect(o.exitCode).toBe(1);
    expect(results(h.events)).toEqual([
      'cutover/stop@db1=changed',
      'cutover/promote@db2=failed',
      'cutover/rescue/start-again@db1=changed',
      'cutover/rescue/then@db1=changed',
    ]);
    expect(h.calls.filter((c) => c.kind === 'exec').map((c) => `${c.host}:${c.argv!.join(' ')}`)).toContain('db1:start cutover failed');
    expect(h.events.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', error: { step: 'cutover/promote', host: 'db2' } });
  });

  it('a section that completes runs no rescue', async () => {
    const { h, outcome } = run('fine', () => ({ exitCode: 0 }));
    expect((await outcome).exitCode).toBe(0);
    expect(results(h.events)).toEqual(['cutover/stop@db1=changed', 'cutover/promote@db2=changed', 'cutover/after@db2=changed', 'later@db1=changed']);
  });

  it('a failed rescue step stops the rescue steps after it; the run keeps the section error', async () => {
    const { h, outcome } = run('bad', (argv) => ({ exitCode: argv[0] === 'bad' || argv[0] === 'start' ? 1 : 0 }));
    const o = await outcome;
    expect(o.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['cutover/stop@db1=changed', 'cutover/promote@db2=failed', 'cutover/rescue/start-again@db1=failed']);
    expect(o.error).toMatchObject({ step: 'cutover/promote' });
  });

  it('a section skipped by its when needs no rescue', async () => {
    const { h, outcome } = run('bad', () => ({ exitCode: 1 }), { when: false });
    // The section never ran; the step after it fails on its own.
    expect((await outcome).exitCode).toBe(1);
    expect(results(h.events)).toEqual(['later@db1=failed']);
  });

  it('after Ctrl-C in the section the rescue still runs, and the run exits 130', async () => {
    const controller = new AbortController();
    const h = harness(
      ['db1', 'db2'],
      (argv) => {
        if (argv[0] === 'long') controller.abort();
        return { exitCode: 0 };
      },
      0,
      [],
      undefined,
      { includes: { 'section.yml': section('long'), 'undo.yml': undo } },
    );
    const o = await h.run(playbook(), {}, { signal: controller.signal });
    expect(o.exitCode).toBe(130);
    expect(results(h.events)).toEqual(['cutover/stop@db1=changed', 'cutover/promote@db2=changed', 'cutover/rescue/start-again@db1=changed', 'cutover/rescue/then@db1=changed']);
  });
});
