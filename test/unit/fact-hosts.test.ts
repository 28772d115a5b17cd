/**
 * Facts are gathered before the first step, at once, for the hosts the playbook's steps run on
 * (engine/fact-hosts.ts; included playbooks' steps too), not for every host of the inventory: each
 * gathering is a process (local) or a session (SSH) per host. Any other host's facts are read when a
 * value or an action reads them (facts-on-demand.test.ts). When a step's hosts cannot be told before the
 * run, every host's facts are gathered.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import type { Playbook, Step } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

/** An action that changes nothing and reads nothing. */
const noteAction: Action<{ text: string }> = {
  name: 'note',
  summary: 'test: changes and reads nothing',
  schema: { type: 'object', properties: { text: { type: 'string' } } },
  changes: [],
  async check() {
    return { changed: false };
  },
  async apply() {
    return { changed: false };
  },
};

/** Runs the steps on db1..db3 as a run starts, and counts the fact gatherings per host. */
async function gatheredFor(steps: Step[], options: { params?: Record<string, unknown>; includes?: Record<string, Playbook>; handlers?: Playbook['handlers'] } = {}) {
  const gathered: Record<string, number> = { db1: 0, db2: 0, db3: 0 };
  const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => {
    gathered[host]!++;
    return {};
  }, { actions: [noteAction], start: true, includes: options.includes });
  const outcome = await h.run({ steps, handlers: options.handlers }, {}, { params: options.params });
  return { gathered, outcome, results: results(h.events) };
}

describe('facts before the first step', () => {
  it('only for the hosts the steps run on', async () => {
    const r = await gatheredFor([
      { id: 'a', name: 'a', hosts: 'db1', note: { text: 'on the primary' } } as Step,
      { id: 'b', name: 'b', hosts: '{{params.target}}', note: { text: '{{host.name}}' } } as Step,
    ], { params: { target: 'db2' } });
    expect(r.outcome.exitCode).toBe(0);
    expect(r.results).toEqual(['a@db1=ok', 'b@db2=ok']);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 0 });
  });

  it('a host a string reads (hosts.<name>.facts) is read when it is read, once', async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: 'db1', note: { text: '{{hosts.db3.facts.running}}' } } as Step]);
    expect(r.outcome.exitCode).toBe(0);
    expect(r.gathered).toEqual({ db1: 1, db2: 0, db3: 1 });
  });

  it('an action that may reach other hosts does not make every host read', async () => {
    const r = await gatheredFor([
      { id: 'a', name: 'a', hosts: 'db1', note: { text: 'x' } } as Step,
      { id: 'b', name: 'b', hosts: 'db1', gate: { changes: false } } as Step,
    ]);
    expect(r.gathered).toEqual({ db1: 1, db2: 0, db3: 0 });
  });

  it("an included playbook's steps count with the hosts they run on (their own, or the include's), its params rendered", async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: 'db1', include: { playbook: 'inner.yml', params: { target: '{{params.target}}' } } } as Step], {
      params: { target: 'db3' },
      includes: {
        'inner.yml': {
          name: 'inner',
          params: { target: { type: 'string', required: true } },
          steps: [{ id: 'n', name: 'n', note: { text: 'x' } } as unknown as Step, { id: 'm', name: 'm', hosts: '{{params.target}}', note: { text: 'y' } } as unknown as Step],
        },
      },
    });
    expect(r.outcome.exitCode, r.outcome.error?.message).toBe(0);
    expect(r.results).toEqual(['a/n@db1=ok', 'a/m@db3=ok']);
    expect(r.gathered).toEqual({ db1: 1, db2: 0, db3: 1 });
  });

  it('a handler without hosts (it runs where it was notified) does not make every host read', async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: 'db2', touch: { path: '/tmp/h', content: 'x' }, notify: ['after'] } as Step], {
      handlers: { after: { name: 'after', note: { text: 'y' } } as unknown as Step },
    });
    expect(r.outcome.exitCode, r.outcome.error?.message).toBe(0);
    expect(r.results).toEqual(['a@db2=changed', 'after@db2=ok']);
    expect(r.gathered).toEqual({ db1: 0, db2: 1, db3: 0 });
  });

  it('every host when a step\'s hosts cannot be told before the run (they read facts)', async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: "{{#if hosts.db1.facts.running}}db1{{else}}db2{{/if}}", note: { text: 'x' } } as Step]);
    expect(r.outcome.exitCode, r.outcome.error?.message).toBe(0);
    // db1 runs: decided on its facts, not on an empty mapping.
    expect(r.results).toEqual(['a@db1=ok']);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 1 });
  });
});
