/**
 * The suite's file order (test/setup/sequencer.ts): unit files before e2e files, and among the e2e files
 * the known longest first, whatever order vitest found them in and with no cache of durations (CI's
 * clean clone), so that no long file starts last and runs alone at the end.
 */
import { describe, expect, it } from 'vitest';
import type { TestSpecification, Vitest } from 'vitest/node';
import { LongestFirstSequencer } from '../setup/sequencer.js';

const ROOT = '/repo';

function spec(path: string): TestSpecification {
  const project = path.startsWith('test/unit/') ? { name: 'unit', groupOrder: 0 } : { name: 'e2e', groupOrder: 1 };
  return { moduleId: `${ROOT}/${path}`, project: { name: project.name, config: { isolate: true, sequence: { groupOrder: project.groupOrder } } } } as unknown as TestSpecification;
}

/** A vitest context without any cached results or file stats, as on a clean clone. */
const cleanClone = { config: { root: ROOT }, cache: { getFileTestResults: () => undefined, getFileStats: () => undefined } } as unknown as Vitest;

describe('LongestFirstSequencer', () => {
  it('runs the unit files first, then the longest e2e files (dr-machines, the rig procedures) before the short ones', async () => {
    const found = ['test/e2e/client.test.ts', 'test/e2e/rig-procedures-pgdata.test.ts', 'test/unit/expr.test.ts', 'test/e2e/facts.test.ts', 'test/e2e/dr-machines.test.ts', 'test/unit/quote.test.ts', 'test/e2e/rig-procedures-debian.test.ts'];
    const order = (await new LongestFirstSequencer(cleanClone).sort(found.map(spec))).map((s) => s.moduleId.slice(ROOT.length + 1));
    expect(order).toEqual([
      'test/unit/expr.test.ts',
      'test/unit/quote.test.ts',
      'test/e2e/dr-machines.test.ts',
      'test/e2e/rig-procedures-debian.test.ts',
      'test/e2e/rig-procedures-pgdata.test.ts',
      'test/e2e/client.test.ts',
      'test/e2e/facts.test.ts',
    ]);
  });
});
