import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { harness } from './support/engine-harness.js';

function runEnd(events: RunEvent[]): Extract<RunEvent, { type: 'run-end' }> {
  return events.find((e): e is Extract<RunEvent, { type: 'run-end' }> => e.type === 'run-end')!;
}

describe("run-end's duration", () => {
  it('counts from the start the caller gives (the CLI gives its process start), not from the first step', async () => {
    const h = harness(['db1'], () => ({ exitCode: 0 }));
    // As if start-up (loading, validation, facts) had taken a minute before the engine began.
    const startedAt = Date.now() - 60_000;
    await h.run({ steps: [{ id: 's', hosts: 'all', run: { argv: ['true'] } }] }, { startedAt });
    const end = runEnd(h.events);
    expect(end.status).toBe('ok');
    expect(end.durationMs).toBeGreaterThanOrEqual(60_000);
    expect(end.durationMs).toBeLessThanOrEqual(Date.parse(end.time) - startedAt + 1);
  });

  it('without one, counts from when the engine starts the run', async () => {
    const h = harness(['db1'], () => ({ exitCode: 0 }));
    const before = Date.now();
    await h.run({ steps: [{ id: 's', hosts: 'all', run: { argv: ['true'] } }] });
    const end = runEnd(h.events);
    expect(end.durationMs).toBeLessThanOrEqual(Date.parse(end.time) - before + 1);
  });
});
