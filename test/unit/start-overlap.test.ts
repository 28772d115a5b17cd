/**
 * A run's start does its CPU work while the hosts read their facts (engine/start.ts,
 * preflight-warm.ts): the included playbooks the pre-flight needs are loaded before the facts are in,
 * and a run refuses exactly as before when one of them cannot be loaded.
 */
import { describe, expect, it } from 'vitest';
import type { Playbook, Step } from '../../src/model/playbook.js';
import type { EngineDeps } from '../../src/engine/run-context.js';
import { harness, results } from './support/engine-harness.js';

/** Facts held back until released (or until a fallback, so a run that never releases them still ends and the test fails on the order). */
function heldFacts(order: string[]) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fallback = setTimeout(() => {
    order.push('facts released by the fallback');
    release();
  }, 2000);
  const gather: EngineDeps['gatherFacts'] = async (host) => {
    await released;
    order.push(`facts ${host.name}`);
    return { reachable: true, pgdata_present: true, running: true, in_recovery: host.name !== 'db1' };
  };
  return { gather, release: () => (clearTimeout(fallback), release()) };
}

const inner: Playbook = { name: 'inner', steps: [{ id: 'write', touch: { path: '/x', content: '{{params.v}}' } } as unknown as Step], params: { v: { type: 'string' } } };

describe('start: the pre-flight work that needs no facts overlaps the facts', () => {
  it('the included playbook is loaded while the facts are still being read', async () => {
    const order: string[] = [];
    const facts = heldFacts(order);
    const includes = new Proxy({ 'inner.yml': inner } as Record<string, Playbook>, {
      get(target, file: string) {
        order.push(`load ${file}`);
        // The include is loaded: the facts may come now.
        facts.release();
        return target[file];
      },
    });
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes, start: true, gatherFacts: facts.gather });
    const outcome = await h.run({ steps: [{ id: 'in', hosts: 'db1', include: { playbook: 'inner.yml', params: { v: 'a' } } } as Step] });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['in/write@db1=changed']);
    const firstLoad = order.indexOf('load inner.yml');
    const firstFacts = order.findIndex((e) => e.startsWith('facts'));
    expect(order).not.toContain('facts released by the fallback');
    expect(firstLoad).toBeGreaterThanOrEqual(0);
    expect(firstLoad).toBeLessThan(firstFacts);
  });

  it('an include that cannot be loaded is still refused by the pre-flight, after the guards, with nothing run', async () => {
    const order: string[] = [];
    const facts = heldFacts(order);
    facts.release();
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: {}, start: true, gatherFacts: facts.gather });
    const outcome = await h.run({
      steps: [{ id: 'first', hosts: 'db1', touch: { path: '/y' } } as Step, { id: 'in', hosts: 'db1', include: { playbook: 'missing.yml' } } as Step],
    });
    expect(outcome.exitCode).toBe(2);
    expect(outcome.error?.message).toMatch(/step in: no included playbook missing\.yml/);
    expect(results(h.events)).toEqual([]);
    expect(h.calls).toEqual([]);
  });
});
