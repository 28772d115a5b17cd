/**
 * Runs `worker` over `items` with at most `limit` in flight, keeping result order. Used to fan a step
 * out across hosts (--forks) and to gather facts.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, worker: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await worker(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/**
 * A gate for tasks that arrive one by one (mapLimit's items, known as they are found): each call runs
 * `task` once fewer than `limit` run, in the order they came.
 */
export function limiter(limit: number): <R>(task: () => Promise<R>) => Promise<R> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async (task) => {
    // A task that ends hands its place to the next waiting one (running stays as it is), so that a call
    // arriving meanwhile cannot take it too.
    if (running >= Math.max(1, limit)) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

export { sleep } from '../core/sleep.js';
