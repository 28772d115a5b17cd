import { Redactor } from '../../../src/core/redact.js';
import type { RunEvent } from '../../../src/engine/events.js';
import { RunContext, type EngineDeps, type EngineOptions } from '../../../src/engine/run-context.js';
import type { Host, Inventory } from '../../../src/model/inventory.js';
import type { Playbook } from '../../../src/model/playbook.js';
import { createRenderer } from '../../../src/render/index.js';

/**
 * A RunContext with nothing behind it but what the test gives (`deps`: transports, facts, connections),
 * for tests of what the run itself does around its steps (engine-harness.ts runs whole playbooks).
 */
export function bareRun(
  hosts: Record<string, Host>,
  deps: Pick<EngineDeps, 'createTransport' | 'connectPostgres'> & Partial<EngineDeps>,
  playbook: Playbook = { name: 'test', steps: [] },
  extra: { options?: Partial<EngineOptions>; params?: Record<string, unknown>; signal?: AbortSignal; sink?: (event: RunEvent) => void; runId?: string } = {},
): RunContext {
  const inventory: Inventory = { cluster: 'main', postgres: { version: 15 }, hosts: {} };
  return new RunContext(
    extra.runId ?? 'bare-run',
    playbook,
    '/virtual/playbook.yml',
    '/virtual',
    inventory,
    '/virtual/inventory.yml',
    hosts,
    extra.params ?? {},
    {},
    { check: false, diff: false, forks: 10, yes: false, defaultTimeoutMs: 5000, ...extra.options },
    {
      renderer: createRenderer({ templateDirs: [] }),
      getAction: () => undefined,
      gatherFacts: async () => ({ reachable: true, pgdata_present: true, running: true }),
      resolveSecret: async () => undefined,
      loadInclude: async () => {
        throw new Error('no includes');
      },
      ...deps,
    },
    new Redactor(),
    extra.signal ?? new AbortController().signal,
    extra.sink ?? (() => {}),
  );
}
