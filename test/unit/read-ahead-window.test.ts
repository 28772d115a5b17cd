import { describe, expect, it } from 'vitest';
import { readAheadWindow } from '../../src/engine/read-ahead.js';
import type { Step } from '../../src/model/playbook.js';
import { ReadAheadCache } from '../../src/transports/read-ahead-cache.js';

/**
 * How many steps a read-ahead covers after steps that changed something of unknown extent. The SSH
 * benchmark's first run (3 inventory hosts on one machine, 10 directories then 10 templates below a
 * parent none of them had yet): step 1 on one host creates the parent the others' answers were located
 * by, so their own creations become changes of unknown extent. Reading only one step after that cost
 * every host one read-ahead more (step 2 read one step, step 3 read the rest: 4 read-aheads per host
 * instead of 3, each a round trip on the run's critical path).
 */
const steps: Step[] = Array.from({ length: 6 }, (_, i) => ({ id: `dir-${i + 1}`, hosts: 'all', file: { path: `/t/d${i + 1}`, state: 'directory' } }) as unknown as Step);

function runWith(cache: ReadAheadCache) {
  return {
    readAheadCache: cache,
    actionOf: () => ({ action: { readAhead: () => [] }, input: {} }),
  } as unknown as Parameters<typeof readAheadWindow>[0];
}

/** A finished step: `unknown` when it made a change of unknown extent on a host. */
function finishStep(cache: ReadAheadCache, unknown: boolean): void {
  if (unknown) cache.changedOn('h1');
  cache.stepFinished();
}

describe('the read-ahead window after changes of unknown extent', () => {
  it('one such step is followed by a read-ahead of every remaining step, not of one', () => {
    const cache = new ReadAheadCache();
    expect(readAheadWindow(runWith(cache), steps, 0, '').map((s) => s.id)).toEqual(['dir-1', 'dir-2', 'dir-3', 'dir-4', 'dir-5', 'dir-6']);
    finishStep(cache, true);
    expect(readAheadWindow(runWith(cache), steps, 1, '')).toHaveLength(5);
  });

  it('two in a row read one step; a step whose changes were all of known extent reads the rest again', () => {
    const cache = new ReadAheadCache();
    finishStep(cache, true);
    finishStep(cache, true);
    expect(readAheadWindow(runWith(cache), steps, 2, '').map((s) => s.id)).toEqual(['dir-3']);
    finishStep(cache, true);
    expect(readAheadWindow(runWith(cache), steps, 3, '')).toHaveLength(1);
    finishStep(cache, false);
    expect(readAheadWindow(runWith(cache), steps, 4, '').map((s) => s.id)).toEqual(['dir-5', 'dir-6']);
  });
});
