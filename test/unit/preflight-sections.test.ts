/**
 * The pre-flight (engine/preflight-render.ts) against what a run reaches only later: a section's rescue,
 * each item of a looped include, a step whose `when` reads facts that the steps before it change. Each
 * was met only after the run had changed something (a review of the engine's order, session 37): the
 * primary stopped, then the undo could not render, or item 2 of a rebuild refused after item 1 ran.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/engine/action.js';
import { assertAction } from '../../src/actions/assert.js';
import type { Playbook, Step } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

const execs = (h: ReturnType<typeof harness>) => h.calls.filter((c) => c.kind === 'exec').map((c) => `${c.host}:${c.argv!.join(' ')}`);
const stop: Step = { id: 'stop', hosts: 'db1', run: { argv: ['stop-the-server'] } };
/** A section that stops the primary and then fails to promote the candidate: its rescue must run. */
const section: Playbook = {
  name: 'section',
  steps: [
    { id: 'shutdown', hosts: 'db1', run: { argv: ['shutdown-primary'] } },
    { id: 'promote', hosts: 'db2', run: { argv: ['fail-promote'] } },
  ],
};
const failPromote = (argv: string[]) => ({ exitCode: argv[0] === 'fail-promote' ? 1 : 0 });

describe('a rescue is checked before the run changes anything', () => {
  it('a rescue step that cannot render (a typo in the undo) refuses the run before the section stops the primary', async () => {
    const undo: Playbook = { name: 'undo', steps: [{ id: 'start', hosts: 'db1', run: { argv: ['start-primary', '{{vars.typo_here}}'] } }] };
    const h = harness(['db1', 'db2'], failPromote, 0, [], undefined, { includes: { 'section.yml': section, 'undo.yml': undo }, start: true });
    const outcome = await h.run({ steps: [{ id: 'cutover', hosts: 'db1', include: { playbook: 'section.yml' }, rescue: { playbook: 'undo.yml' } }] });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'cutover/rescue/start', host: 'db1' } });
    expect(execs(h)).toEqual([]);
  });

  it('a rescue given a param its playbook does not take refuses the run before the section runs', async () => {
    const undo: Playbook = { name: 'undo', params: { wait: { type: 'string', default: '1m' } }, steps: [{ id: 'start', hosts: 'db1', run: { argv: ['start-primary'] } }] };
    const h = harness(['db1', 'db2'], failPromote, 0, [], undefined, { includes: { 'section.yml': section, 'undo.yml': undo }, start: true });
    const outcome = await h.run({ steps: [{ id: 'cutover', hosts: 'db1', include: { playbook: 'section.yml' }, rescue: { playbook: 'undo.yml', params: { wiat: '2m' } } }] });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid' });
    expect(outcome.error?.message).toContain('wiat');
    expect(execs(h)).toEqual([]);
  });

  it('a rescue that renders still runs when the section fails', async () => {
    const undo: Playbook = { name: 'undo', steps: [{ id: 'start', hosts: 'db1', run: { argv: ['start-primary'] } }] };
    const h = harness(['db1', 'db2'], failPromote, 0, [], undefined, { includes: { 'section.yml': section, 'undo.yml': undo }, start: true });
    const outcome = await h.run({ steps: [{ id: 'cutover', hosts: 'db1', include: { playbook: 'section.yml' }, rescue: { playbook: 'undo.yml' } }] });
    expect(outcome.exitCode).toBe(1);
    expect(execs(h)).toEqual(['db1:shutdown-primary', 'db2:fail-promote', 'db1:start-primary']);
  });

  it('a guarded section whose later step cannot render: refused before the section is entered, and its rescue does not run', async () => {
    const typo: Playbook = {
      name: 'section',
      steps: [
        { id: 'shutdown', hosts: 'db1', run: { argv: ['shutdown-primary'] } },
        { id: 'promote', hosts: 'db2', run: { argv: ['promote', '{{vars.tpyo}}'] } },
      ],
    };
    const undo: Playbook = { name: 'undo', steps: [{ id: 'start', hosts: 'db1', run: { argv: ['start-old-primary'] } }] };
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: { 'section.yml': typo, 'undo.yml': undo }, start: true });
    const outcome = await h.run({ steps: [{ id: 'cutover', hosts: 'db1', guard: true, include: { playbook: 'section.yml' }, rescue: { playbook: 'undo.yml' } }] });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'cutover/promote', host: 'db2' } });
    expect(results(h.events)).toEqual([]);
    expect(execs(h)).toEqual([]);
  });
});

describe('a looped include is checked with each of its items', () => {
  /** An include run once per host named by its item, whose step reads host.vars.dir: db1 has it, db2 not. */
  const rebuildEach = () => {
    const child: Playbook = { name: 'child', params: { target: { type: 'string', required: true } }, steps: [{ id: 'rebuild', hosts: '{{params.target}}', run: { argv: ['rebuild', '{{host.vars.dir}}'] } }] };
    return harness(['db1', 'db2'], undefined, 0, [], undefined, {
      includes: { 'child.yml': child },
      start: true,
      configure: (host) => {
        if (host.name === 'db1') host.vars = { dir: '/x' };
      },
    });
  };

  it('an item whose params cannot render refuses the run before the first item runs', async () => {
    const child: Playbook = { name: 'child', params: { target: { type: 'string', required: true } }, steps: [{ id: 'rebuild', hosts: 'db1', run: { argv: ['rebuild', '{{params.target}}'] } }] };
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: { 'child.yml': child }, start: true });
    const outcome = await h.run({
      steps: [stop, { id: 'each', hosts: 'db1', loop: [{ name: 'db2', dir: '/a' }, { name: 'db3' }], include: { playbook: 'child.yml', params: { target: '{{item.name}}:{{item.dir}}' } } }],
    });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid' });
    expect(outcome.error?.message).toContain('item.dir');
    expect(execs(h)).toEqual([]);
  });

  it("an item whose included step cannot render on that item's host refuses the run before the first item runs", async () => {
    const h = rebuildEach();
    const outcome = await h.run({ steps: [stop, { id: 'each', hosts: 'db1', loop: ['db1', 'db2'], include: { playbook: 'child.yml', params: { target: '{{item}}' } } }] });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid', error: { step: 'each/rebuild', host: 'db2' } });
    expect(execs(h)).toEqual([]);
  });

  it('an item the include skips by its when is not checked', async () => {
    const h = rebuildEach();
    const outcome = await h.run({ steps: [stop, { id: 'each', hosts: 'db1', loop: ['db1', 'db2'], when: "item == 'db1'", include: { playbook: 'child.yml', params: { target: '{{item}}' } } }] });
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect(execs(h)).toEqual(['db1:stop-the-server', 'db1:rebuild /x']);
  });
});

describe('a when that reads facts may hold later: the step it guards is checked', () => {
  let running = false;
  const startAction: Action<Record<string, never>> = {
    name: 'start',
    summary: 'test: starts the server',
    schema: { type: 'object' },
    changes: ['server'],
    async check(ctx) {
      return { changed: !ctx.facts.running };
    },
    async apply(ctx) {
      await ctx.transport.exec(['pg_ctl', 'start']);
      running = true;
      return { changed: true };
    },
  };

  it('a step after a start, when: facts.running (false at the start), with a typo: refused before the start', async () => {
    running = false;
    const h = harness(['db1', 'db2'], undefined, 0, [], () => ({ running, in_recovery: running ? false : undefined }), { start: true, actions: [startAction] });
    const outcome = await h.run({
      steps: [
        { id: 'start', hosts: 'db1', start: {} },
        { id: 'slots', hosts: 'db1', when: 'facts.running', run: { argv: ['psql', '{{vars.downstrem}}'] } },
      ],
    });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'slots', host: 'db1' } });
    expect(execs(h)).toEqual([]);
  });

  it('the same step without the typo runs after the start', async () => {
    running = false;
    const h = harness(['db1', 'db2'], undefined, 0, [], () => ({ running, in_recovery: running ? false : undefined }), { start: true, actions: [startAction] });
    const outcome = await h.run({
      steps: [
        { id: 'start', hosts: 'db1', start: {} },
        { id: 'slots', hosts: 'db1', when: 'facts.running', run: { argv: ['psql', '{{host.name}}'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    expect(execs(h)).toEqual(['db1:pg_ctl start', 'db1:psql db1']);
  });
});

describe('the hosts of a guard outside --limit are read and checked at the start', () => {
  it("a guard's host whose server contradicts the inventory refuses the run before the first step, under --limit too", async () => {
    // db1 runs PostgreSQL 16 where the inventory says 15; --limit db2 leaves db1 to the guard on the primary.
    const h = harness(['db1', 'db2'], undefined, 0, [], (name) => (name === 'db1' ? { version: 16 } : {}), { actions: [assertAction as Action<any>], start: true });
    const run = h.run(
      {
        steps: [
          { id: 'write', hosts: 'db2', run: { argv: ['write-conf'] } },
          { id: 'primary-ok', hosts: 'primary', guard: true, assert: { that: 'true' } },
          { id: 'restart', hosts: 'db2', run: { argv: ['restart'] } },
        ],
      },
      { limit: ['db2'] },
    );
    // Refused by the run's start (engine/start.ts), as for the hosts within the limit: exit 3.
    await expect(run).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('db1: the inventory says PostgreSQL 15') });
    expect(results(h.events)).toEqual([]);
    expect(execs(h)).toEqual([]);
  });
});
