/**
 * A host's facts are read when something reads them, whichever host it is: --limit narrows where steps
 * run, not what they may know of the cluster. Under --limit (and for the hosts a run did not read at its
 * start, engine/fact-hosts.ts) a `when`, a template, an action's ctx.factsOf and the one-primary
 * invariant's own reading of a step see another host's real facts, read then, instead of an empty
 * mapping (a render error, "unknown variable ... (it is empty)", or an action's TypeError).
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { Step } from '../../src/model/playbook.js';
import { harness, promoted, results } from './support/engine-harness.js';

/** Reads another host's facts from its check, as identity guards and pitr targets do. */
const seen: Array<HostFacts | undefined> = [];
const peekAction: Action<{ other: string }> = {
  name: 'peek',
  summary: "test: reads another host's facts",
  schema: { type: 'object', required: ['other'], properties: { other: { type: 'string' } } },
  async check(ctx, input) {
    const facts = await ctx.factsOf(input.other);
    seen.push(facts);
    return { changed: false, msg: `${input.other} running: ${facts.running}` };
  },
  async apply() {
    return { changed: false };
  },
};

/** db1 the primary (read-write, system identifier 7001), db2 and db3 standbys; counts each host's reads, at the start or during the steps. */
function cluster(state: (host: string) => Partial<HostFacts> = () => ({})) {
  const reads: Record<string, string[]> = { db1: [], db2: [], db3: [] };
  const h = harness(
    ['db1', 'db2', 'db3'],
    undefined,
    0,
    [],
    (host) => {
      reads[host]!.push(h.events.some((e) => e.type === 'run-start') ? 'during' : 'start');
      return { in_recovery: host !== 'db1' && !promoted.has(host), system_identifier: host === 'db1' ? '7001' : '7001', ...state(host) };
    },
    { actions: [peekAction], start: true },
  );
  return { h, reads };
}

describe("another host's facts are read when a step reads them", () => {
  it('under --limit: a when and a template on db2 see the primary db1 as it is', async () => {
    const { h, reads } = cluster();
    const outcome = await h.run(
      {
        steps: [
          {
            id: 'copy',
            name: 'copy',
            hosts: 'db2',
            when: 'hosts.db1.facts.running and not hosts.db1.facts.in_recovery',
            touch: { path: '/tmp/upstream-id', content: "{{hosts.db1.facts.system_identifier}} {{lookup (lookup (lookup hosts 'db1') 'facts') 'running'}}" },
          } as Step,
        ],
      },
      { limit: ['db2'] },
    );
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect(results(h.events)).toEqual(['copy@db2=changed']);
    expect((await h.transports.get('db2')!.readFile('/tmp/upstream-id'))?.toString()).toBe('7001 true');
    // db1 once, when the step read it; db3, which nothing reads, never.
    expect(reads).toEqual({ db1: ['during'], db2: ['start'], db3: [] });
  });

  it("under --limit: an action's ctx.factsOf of another host gets its facts, not undefined", async () => {
    seen.length = 0;
    const { h, reads } = cluster();
    const outcome = await h.run({ steps: [{ id: 'peek', name: 'peek', hosts: 'db2', peek: { other: 'db1' } } as Step] }, { limit: ['db2'] });
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect(seen.map((f) => [f?.reachable, f?.running, f?.in_recovery])).toEqual([[true, true, false]]);
    expect(reads.db1).toEqual(['during']);
  });

  it('under --limit: the one-primary invariant still refuses (exit 3) a promotion whose when reads the primary', async () => {
    promoted.clear();
    const { h } = cluster();
    const outcome = await h.run(
      { steps: [{ id: 'promote', name: 'promote', hosts: 'db2', when: 'not hosts.db1.facts.in_recovery', promote: {} } as Step] },
      { limit: ['db2'], yes: true },
    );
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error?.message).toContain('db1 runs read-write: promote would make db2 a second primary');
    expect(promoted.has('db2')).toBe(false);
  });

  it('without --limit: only the hosts the steps run on are read at the start; a host a value reads, when it is read', async () => {
    const { h, reads } = cluster();
    const outcome = await h.run({
      steps: [
        { id: 'a', name: 'a', hosts: 'db1', touch: { path: '/tmp/a', content: 'a' } } as Step,
        { id: 'b', name: 'b', hosts: 'db1', touch: { path: '/tmp/b', content: '{{hosts.db3.facts.in_recovery}}' } } as Step,
      ],
    });
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect((await h.transports.get('db1')!.readFile('/tmp/b'))?.toString()).toBe('true');
    expect(reads).toEqual({ db1: ['start'], db2: [], db3: ['during'] });
  });

  it('a host first read for a step that runs on it, whose facts contradict the inventory, is refused (exit 3) before the step', async () => {
    const { h } = cluster((host) => (host === 'db1' ? { version: 16 } : {}));
    // The guard runs on db1 although --limit leaves db1 out: its facts are read for it at the start, and
    // checked there with the others' (engine/start.ts), before the first step.
    const run = h.run({ steps: [{ id: 'fence', name: 'fence', guard: true, hosts: 'db1', run: { argv: ['fence'] } } as Step, { id: 'work', name: 'work', hosts: 'db2', run: { argv: ['work'] } } as Step] }, { limit: ['db2'] });
    await expect(run).rejects.toMatchObject({ exitCode: 3, message: expect.stringContaining('db1: the inventory says PostgreSQL 15 (postgres.version), but') });
    expect(results(h.events)).toEqual([]);
  });
});

describe('--limit that would leave a later step without what an earlier one registers', () => {
  it('is refused (exit 2) before anything runs, naming the step left out, the register and who reads it', async () => {
    const { h } = cluster();
    const outcome = await h.run(
      {
        steps: [
          // A fence outside the limit runs (guards always do), first: before the pre-flight's render ...
          { id: 'fence', name: 'fence', guard: true, hosts: 'db1', run: { argv: ['fence'] } } as Step,
          { id: 'first', name: 'first', hosts: 'db2', run: { argv: ['first'] } } as Step,
          // ... but this step is left out, and what it registers on db1 never comes ...
          { id: 'read', name: 'read', hosts: 'db1', run: { argv: ['read'] }, register: 'state' } as Step,
          // ... for the step on db2 that reads it: it would stop the run after the fence.
          { id: 'use', name: 'use', hosts: 'db2', when: 'not hosts.db1.registered.state.changed', run: { argv: ['use'] } } as Step,
        ],
      },
      { limit: ['db2'] },
    );
    expect(outcome.exitCode).toBe(2);
    expect(outcome.error?.message).toContain('--limit db2 leaves out what the steps that run need; nothing was changed');
    expect(outcome.error?.message).toContain('step use on db2: it reads state, which step read registers on db1; --limit db2 leaves that step out');
    expect(outcome.error?.expected).toBe('--limit db2,db1, or no --limit');
    expect(results(h.events)).toEqual([]);
    expect(h.calls.map((c) => c.argv?.[0])).not.toContain('fence');
  });

  it("a step's own register, read on hosts where the step left out never ran, is no reason to refuse", async () => {
    const { h } = cluster();
    const outcome = await h.run(
      {
        steps: [
          { id: 'mark', name: 'mark', hosts: 'db1', run: { argv: ['mark'] }, register: 'marked' } as Step,
          // On db2 `marked` was never registered, limit or not: the default stands for it.
          { id: 'after', name: 'after', hosts: 'db2', when: 'not default(marked.changed, false)', run: { argv: ['after'] } } as Step,
        ],
      },
      { limit: ['db2'] },
    );
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect(results(h.events)).toEqual(['after@db2=changed']);
  });

  it('a register the limit leaves out that no step reads is no reason to refuse', async () => {
    const { h } = cluster();
    const outcome = await h.run(
      {
        steps: [
          { id: 'first', name: 'first', hosts: 'db2', run: { argv: ['first'] } } as Step,
          { id: 'read', name: 'read', hosts: 'db1', run: { argv: ['read'] }, register: 'state' } as Step,
          { id: 'use', name: 'use', hosts: 'db2', run: { argv: ['use'] } } as Step,
        ],
      },
      { limit: ['db2'] },
    );
    expect(outcome.exitCode, outcome.error?.message).toBe(0);
    expect(results(h.events)).toEqual(['first@db2=changed', 'use@db2=changed']);
  });
});
