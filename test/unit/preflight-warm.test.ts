/**
 * While the hosts read their facts, the run does the pre-flight's work that needs none (preflight-warm.ts):
 * among it, each step's input validator is loaded (a generated module per action), which the pre-flight
 * would otherwise load on its way, after the facts, on the way to the first step that is not a guard.
 */
import { describe, expect, it, vi } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import { warmPreflight } from '../../src/engine/preflight-warm.js';
import type { Playbook } from '../../src/model/playbook.js';
import * as validators from '../../src/schema/validators.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { bareRun } from './support/bare-run.js';
import { host, runAction } from './support/engine-harness.js';

vi.mock('../../src/schema/validators.js', async (importOriginal) => {
  const original = await importOriginal<typeof validators>();
  return { ...original, validatorFor: vi.fn(original.validatorFor) };
});

const listAction: Action<{ paths: string[] }> = {
  ...(runAction as unknown as Action<{ paths: string[] }>),
  name: 'list',
  schema: { type: 'object', required: ['paths'], properties: { paths: { type: 'array', items: { type: 'string' } } } },
};

describe('the pre-flight work done while the facts are read', () => {
  it("loads the input validator of every step's action, the included playbook's steps too", async () => {
    const included: Playbook = { name: 'inner', steps: [{ id: 'inner-list', hosts: 'db1', list: { paths: ['/a'] } } as never] };
    const run = bareRun(
      { db1: host('db1', 'primary') },
      {
        createTransport: () => new FakeTransport('db1'),
        connectPostgres: async () => {
          throw new Error('no connection here');
        },
        getAction: (name) => (name === 'run' ? runAction : name === 'list' ? listAction : undefined),
        loadInclude: async () => included,
      },
      {
        name: 'outer',
        steps: [{ id: 'outer-run', hosts: 'db1', run: { argv: ['true'] } } as never, { id: 'inner', include: { playbook: 'inner.yml' } } as never],
      },
    );
    const asked = vi.mocked(validators.validatorFor);
    asked.mockClear();
    await warmPreflight(run);
    const schemas = asked.mock.calls.filter(([profile]) => profile === 'input').map(([, schema]) => schema);
    expect(schemas).toContain(runAction.schema);
    expect(schemas).toContain(listAction.schema);
  });
});
