/**
 * engine/pool.ts's limiter: tasks handed over one by one (the hosts a run's start finds, each read as soon
 * as it is known) run at most `limit` at a time, in the order they came, also when a task arrives just as
 * another ends.
 */
import { describe, expect, it } from 'vitest';
import { limiter } from '../../src/engine/pool.js';

describe('limiter', () => {
  it('runs at most `limit` tasks at once, in the order they came, whenever they arrive', async () => {
    const limit = limiter(2);
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const task = (i: number) => async () => {
      started.push(i);
      running++;
      most = Math.max(most, running);
      // Ends on a later turn of the event loop, so that other calls arrive meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      return i * 10;
    };
    const first = [0, 1, 2, 3].map((i) => limit(task(i)));
    // One arrives as the first ones end: it must not take a place a waiting task was handed.
    await first[0];
    const late = limit(task(4));
    expect(await Promise.all([...first, late])).toEqual([0, 10, 20, 30, 40]);
    expect(most).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('a task that fails frees its place', async () => {
    const limit = limiter(1);
    await expect(limit(async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(await limit(async () => 'next')).toBe('next');
  });
});
