/**
 * Facts are gathered before the first step for the hosts the playbook can touch (engine/fact-hosts.ts),
 * not for every host of the inventory: each gathering is a process (local) or a session (SSH) per host.
 * Whenever the playbook may read another host (an action that does not declare ownHostOnly, a string
 * naming `hosts`, an include, a `hosts:` that cannot be rendered yet), every host's facts are gathered.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import type { Step } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

/** An action that reads only its own host, as command, assert and sql declare. */
const noteAction: Action<{ text: string }> = {
  name: 'note',
  summary: 'test: reads nothing of another host',
  schema: { type: 'object', properties: { text: { type: 'string' } } },
  changes: [],
  ownHostOnly: true,
  async check() {
    return { changed: false };
  },
  async apply() {
    return { changed: false };
  },
};

/** Runs the steps on db1..db3 as a run starts, and counts the fact gatherings per host. */
async function gatheredFor(steps: Step[], options: { params?: Record<string, unknown>; includes?: Record<string, { name: string; steps: Step[] }> } = {}) {
  const gathered: Record<string, number> = { db1: 0, db2: 0, db3: 0 };
  const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => {
    gathered[host]!++;
    return {};
  }, { actions: [noteAction], start: true, includes: options.includes });
  const outcome = await h.run({ steps }, {}, { params: options.params });
  return { gathered, outcome, results: results(h.events) };
}

describe('facts before the first step', () => {
  it('only for the hosts the steps run on when every step reaches only its own host', async () => {
    const r = await gatheredFor([
      { id: 'a', name: 'a', hosts: 'db1', note: { text: 'on the primary' } } as Step,
      { id: 'b', name: 'b', hosts: '{{params.target}}', note: { text: '{{host.name}}' } } as Step,
    ], { params: { target: 'db2' } });
    expect(r.outcome.exitCode).toBe(0);
    expect(r.results).toEqual(['a@db1=ok', 'b@db2=ok']);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 0 });
  });

  it('for every host when a string reads another host (hosts.<name>.facts)', async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: 'db1', note: { text: '{{hosts.db3.facts.running}}' } } as Step]);
    expect(r.outcome.exitCode).toBe(0);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 1 });
  });

  it('for every host when an action does not declare that it reaches only its own host', async () => {
    const r = await gatheredFor([
      { id: 'a', name: 'a', hosts: 'db1', note: { text: 'x' } } as Step,
      { id: 'b', name: 'b', hosts: 'db1', gate: { changes: false } } as Step,
    ]);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 1 });
  });

  it('for every host when a step includes another playbook (its steps are not known yet)', async () => {
    const r = await gatheredFor([{ id: 'a', name: 'a', hosts: 'db1', include: { playbook: 'inner.yml' } } as Step], {
      includes: { 'inner.yml': { name: 'inner', steps: [{ id: 'n', name: 'n', note: { text: 'x' } } as unknown as Step] } },
    });
    expect(r.outcome.exitCode).toBe(0);
    expect(r.gathered).toEqual({ db1: 1, db2: 1, db3: 1 });
  });
});
