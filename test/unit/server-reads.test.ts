import { describe, expect, it } from 'vitest';
import { ServerReads } from '../../src/engine/server-reads.js';

/** When the one-primary invariant may take a host's facts as its read after a step (engine/server-reads.ts). */
describe('a server read vouches for after a change only when nothing can have changed since it began', () => {
  it('a read that began after the last apply ended is current; an apply ending after it begins makes it stale', () => {
    const reads = new ServerReads();
    reads.applyEnded(reads.applying());
    const mark = reads.begin();
    reads.read('db1', mark, true);
    expect(reads.readSinceLastChange('db1')).toBe(true);
    reads.applyEnded(reads.applying());
    expect(reads.readSinceLastChange('db1')).toBe(false);
  });

  it('nothing is current while an apply runs (one abandoned by its timeout may still change a server)', () => {
    const reads = new ServerReads();
    reads.applying();
    reads.read('db1', reads.begin(), true);
    expect(reads.applyRunning).toBe(true);
    expect(reads.readSinceLastChange('db1')).toBe(false);
  });

  it('a read that failed, or an older read that answered after a newer one, leaves the host to be read again', () => {
    const reads = new ServerReads();
    const older = reads.begin();
    const newer = reads.begin();
    reads.read('db1', newer, true);
    expect(reads.readSinceLastChange('db1')).toBe(true);
    // The facts now hold the older read.
    reads.read('db1', older, true);
    expect(reads.readSinceLastChange('db1')).toBe(false);
    reads.read('db2', reads.begin(), true);
    reads.read('db2', reads.begin(), false);
    expect(reads.readSinceLastChange('db2')).toBe(false);
  });

  it("an apply's own read after its change is current unless another apply ended while it ran", () => {
    const reads = new ServerReads();
    const alone = reads.applying();
    reads.applyEnded(alone);
    reads.adopted('db1', alone, true);
    expect(reads.readSinceLastChange('db1')).toBe(true);

    const first = reads.applying();
    const second = reads.applying();
    reads.applyEnded(second); // second ends
    reads.adopted('db2', second, true);
    reads.applyEnded(first); // first ends, after db2's facts were taken: they are stale
    reads.adopted('db1', first, true);
    expect(reads.readSinceLastChange('db2')).toBe(false);
    // db1's apply saw db2's end while it ran: what db1 read may predate it.
    expect(reads.readSinceLastChange('db1')).toBe(false);
  });

  it("an apply's changes end once: its action saying so (ActionContext.changeEnded) and the engine after it count as one end", () => {
    const reads = new ServerReads();
    const ticket = reads.applying();
    const listened: number[] = [];
    reads.onChange(() => listened.push(reads.endedCount));
    // The action's change is over (a start returned); what it does next only reads.
    reads.applyEnded(ticket);
    expect(reads.applyRunning).toBe(false);
    const other = reads.begin();
    // Its own read after the change, then the engine's end of the apply, which must not count again.
    reads.adopted('db2', ticket, true);
    reads.applyEnded(ticket);
    reads.read('db1', other, true);
    expect(reads.endedCount).toBe(1);
    expect(listened).toEqual([1]);
    expect(reads.applyRunning).toBe(false);
    // A read begun after the change ended, and the apply's own read after it, both stand for after the step.
    expect(reads.readSinceLastChange('db1')).toBe(true);
    expect(reads.readSinceLastChange('db2')).toBe(true);
  });
});
