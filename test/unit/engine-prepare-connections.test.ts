/**
 * A run whose steps use an action that connects to PostgreSQL (Action.connects) loads the client library
 * while its facts are read (engine/preflight-warm.ts), not on its first such step; a run with none never
 * loads it. Counted here through EngineDeps.prepareConnections, against the facts and the first step.
 */
import { describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import { harness, results, runAction } from './support/engine-harness.js';

/** A step that would connect: its check notes when it ran. */
function connecting(seen: string[]): Action<{ argv: string[] }> {
  return {
    ...runAction,
    name: 'query',
    connects: true,
    async check() {
      seen.push('first step');
      return { changed: false };
    },
  };
}

describe('loading the PostgreSQL client ahead of the first step that connects', () => {
  async function runWith(steps: Parameters<ReturnType<typeof harness>['run']>[0]['steps'], includes = {}) {
    const seen: string[] = [];
    const h = harness(['db1'], undefined, 0, [], undefined, {
      actions: [connecting(seen)],
      includes,
      start: true,
      gatherFacts: async () => {
        seen.push('facts');
        // The facts take a while: the client is loaded meanwhile, not after them.
        await new Promise((resolve) => setTimeout(resolve, 30));
        seen.push('facts read');
        return { reachable: true, pgdata_present: true, running: true, in_recovery: false };
      },
      prepareConnections: async () => void seen.push('client loaded'),
    });
    await h.run({ steps });
    return { seen, results: results(h.events) };
  }

  it('a step that connects: the client is loaded once while the facts are read', async () => {
    const { seen, results: r } = await runWith([
      { id: 'cmd', hosts: 'db1', run: { argv: ['true'] } },
      { id: 'q1', hosts: 'db1', query: { argv: [] } },
      { id: 'q2', hosts: 'db1', query: { argv: [] } },
    ]);
    expect(r).toEqual(['cmd@db1=changed', 'q1@db1=ok', 'q2@db1=ok']);
    expect(seen).toEqual(['facts', 'client loaded', 'facts read', 'first step', 'first step']);
  });

  it('a step that connects in an included playbook counts too', async () => {
    const included = { name: 'inner', steps: [{ id: 'q', hosts: 'db1', query: { argv: [] } }] };
    const { seen } = await runWith([{ id: 'inc', hosts: 'db1', include: { playbook: 'inner.yml' } }], { 'inner.yml': included });
    expect(seen.slice(0, 3)).toEqual(['facts', 'client loaded', 'facts read']);
  });

  it('no step connects: the client is never loaded', async () => {
    const { seen, results: r } = await runWith([{ id: 'cmd', hosts: 'db1', run: { argv: ['true'] } }]);
    expect(r).toEqual(['cmd@db1=changed']);
    expect(seen).toEqual(['facts', 'facts read']);
  });
});
