/**
 * `--from <include-id>/<step>`: the procedures keep each backup tool's steps in an include
 * (playbooks/include/backup/<tool>/), so a run must be able to start at a step inside one, as it could
 * when those steps were the procedure's own. The guards before it still run (those of the include too),
 * the other steps before it do not; every step after it runs, in the include and after it.
 */
import { describe, expect, it } from 'vitest';
import type { Playbook } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

const tool: Playbook = {
  name: 'tool',
  steps: [
    { id: 'conf', hosts: 'db2', run: { argv: ['conf'] } },
    { id: 'fence', guard: true, hosts: 'db1', run: { argv: ['fence'] } },
    { id: 'restore', hosts: 'db2', run: { argv: ['restore'] } },
    { id: 'check', hosts: 'db2', run: { argv: ['check'] } },
  ],
};
const procedure = {
  steps: [
    { id: 'pre-check', guard: true, hosts: 'db1', run: { argv: ['pre'] } },
    { id: 'before', hosts: 'db2', run: { argv: ['before'] } },
    { id: 'pgbackrest', hosts: 'db2', include: { playbook: 'tool.yml' } },
    { id: 'after', hosts: 'db2', run: { argv: ['after'] } },
  ],
};

describe('--from a step inside an include', () => {
  it('starts at that step: the guards before it run (the include\'s too), the other steps before it do not', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: { 'tool.yml': tool } });
    const outcome = await h.run(procedure, { from: 'pgbackrest/restore' });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual([
      'pre-check@db1=changed',
      'pgbackrest/fence@db1=changed',
      'pgbackrest/restore@db2=changed',
      'pgbackrest/check@db2=changed',
      'after@db2=changed',
    ]);
  });

  it('a step after the include is unaffected: the include is passed by, only its guards run', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: { 'tool.yml': tool } });
    await h.run(procedure, { from: 'after' });
    expect(results(h.events)).toEqual(['pre-check@db1=changed', 'pgbackrest/fence@db1=changed', 'after@db2=changed']);
  });

  it('an include that --from starts inside but whose when is false runs nothing of it; the steps after it run', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { includes: { 'tool.yml': tool } });
    const skipped = { steps: procedure.steps.map((s) => (s.id === 'pgbackrest' ? { ...s, when: 'false' } : s)) };
    await h.run(skipped, { from: 'pgbackrest/restore' });
    expect(results(h.events)).toEqual(['pre-check@db1=changed', 'after@db2=changed']);
  });
});
