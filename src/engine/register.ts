import type { HostEntry } from './loop.js';
import { loopRegistered } from './loop.js';
import type { RunContext } from './run-context.js';
import { registeredValue } from './step.js';

/** Hears every value a step (or a loop's item, with its index) registers: the journal keeps them for --resume. */
export type RegisteredListener = (step: string, host: string, handler: boolean, name: string, value: Record<string, unknown>, index?: number) => void;

/**
 * `register`: what a step keeps on a host under its name, for later steps' templates and conditions.
 * A pair done in the resumed run gives back what it registered then (and is not journaled again); a
 * loop registers its items' results as one list, each new item journaled on its own.
 */
export function registerResults(
  run: RunContext,
  where: { name: string; looped: boolean; step: string; host: string; handler: boolean },
  entries: HostEntry[],
  onRegistered?: RegisteredListener,
): void {
  const { name, step, host, handler } = where;
  if (where.looped) {
    const { value, fresh } = loopRegistered(entries, name);
    for (const item of fresh) onRegistered?.(step, host, handler, name, item.value, item.index);
    (run.registered[host] ??= {})[name] = value;
    onRegistered?.(step, host, handler, name, value);
    return;
  }
  const { result, prior } = entries[0]!;
  const value = prior && name in prior.registered ? (prior.registered[name] as Record<string, unknown>) : registeredValue(result);
  (run.registered[host] ??= {})[name] = value;
  if (!prior) onRegistered?.(step, host, handler, name, value);
}
