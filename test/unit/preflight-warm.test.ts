/**
 * While the hosts read their facts, the run does the pre-flight's work that needs none (preflight-warm.ts):
 * among it, each step's generated input validator is loaded (a module of dist/validators per action),
 * which the pre-flight would otherwise load on its way, after the facts. An action without one is left to
 * the pre-flight (Ajv compiles it there). Under vitest the sources are not a build, so which actions have
 * a generated validator is decided here.
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
  return { ...original, validatorFor: vi.fn(original.validatorFor), hasGeneratedValidator: vi.fn(() => true) };
});

const listAction: Action<{ paths: string[] }> = {
  ...(runAction as unknown as Action<{ paths: string[] }>),
  name: 'list',
  schema: { type: 'object', required: ['paths'], properties: { paths: { type: 'array', items: { type: 'string' } } } },
};

describe('the pre-flight work done while the facts are read', () => {
  it("loads the generated input validator of every step's action, the included playbook's steps too", async () => {
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
    const inputSchemas = () => asked.mock.calls.filter(([profile]) => profile === 'input').map(([, schema]) => schema);
    asked.mockClear();
    await warmPreflight(run);
    expect(inputSchemas()).toContain(runAction.schema);
    expect(inputSchemas()).toContain(listAction.schema);

    // Without a generated validator (a tree only tsc built), nothing is compiled here.
    vi.mocked(validators.hasGeneratedValidator).mockImplementation((_profile, schema) => schema !== listAction.schema);
    asked.mockClear();
    await warmPreflight(run);
    expect(inputSchemas()).toContain(runAction.schema);
    expect(inputSchemas()).not.toContain(listAction.schema);
  });
});
