import { PgplayError } from '../core/errors.js';
import type { Step } from '../model/playbook.js';
import type { RunContext } from './run-context.js';
import type { PriorResult } from './prior.js';
import { hostScope } from './scope.js';
import { registeredValue, runStepOnHost, toPgplayError, type HostStepResult } from './step.js';

/**
 * `loop`: a step run once per item on each of its hosts, items one after another. The list is
 * rendered per host (a registered list is per host), each item sees `{{item}}` and `{{item_index}}`
 * (0-based) in its templates, `when`, `until` and `changed_when`, and is reported, journaled and
 * resumed on its own. Like the hosts of a step, every item runs even when one fails; the step then
 * fails on that host. A refusal, an unreachable host or an interrupt stops the items that remain.
 */

/** One result to report for a step on a host: the step's own, or one item's. */
export interface HostEntry {
  result: HostStepResult;
  /** The pair (or item) succeeded in the run being resumed and was not run again. */
  prior?: PriorResult;
  loop?: { index: number; item: unknown; items: number };
}

export interface LoopOptions {
  /** Ctrl-C: no item starts once it is aborted. */
  interrupt: AbortSignal;
  /** What the run being resumed recorded for an item that succeeded. */
  prior(index: number): PriorResult | undefined;
  /** The result reported for an item done in the run being resumed. */
  done(): HostStepResult;
}

/** Runs a looped step on one host: one entry per item, or a single entry when the loop itself fails or is empty. */
export async function runLoopOnHost(run: RunContext, step: Step, hostName: string, options: LoopOptions): Promise<HostEntry[]> {
  let items: unknown[];
  try {
    items = await run.withFacts(() => loopItems(run, step, hostName));
  } catch (e) {
    return [{ result: { status: 'failed', error: toPgplayError(e), attempts: 0, durationMs: 0 } }];
  }
  if (items.length === 0) {
    return [{ result: { status: 'skipped', outcome: { changed: false, skipped: true, msg: 'no items' }, attempts: 0, durationMs: 0 } }];
  }
  const entries: HostEntry[] = [];
  for (const [index, item] of items.entries()) {
    if (options.interrupt.aborted) break;
    const loop = { index, item, items: items.length };
    const prior = options.prior(index);
    // A resumed item is skipped only if it is still the same item (a registered list may have changed).
    if (prior && JSON.stringify(prior.item) === JSON.stringify(run.redactor.redactValue(item))) {
      entries.push({ result: options.done(), prior, loop });
      continue;
    }
    const result = await runStepOnHost(run, step, hostName, [], { item, item_index: index });
    entries.push({ result, loop });
    if (stopsTheLoop(result)) break;
  }
  return entries;
}

function stopsTheLoop(result: HostStepResult): boolean {
  const code = result.error?.code;
  return code === 'GUARD' || code === 'LOCK' || code === 'INTERRUPTED' || code === 'TRANSPORT';
}

/** The step's `loop` rendered for a host: a list literal (its items may be templates) or a template that renders to a list. */
export function loopItems(run: RunContext, step: Step, hostName: string): unknown[] {
  const rendered = run.renderer.renderValue(step.loop, hostScope(run.scopeSources(), hostName), `step ${step.id} loop`);
  if (Array.isArray(rendered)) return rendered;
  const what = rendered === null || rendered === undefined ? 'nothing' : typeof rendered === 'object' ? 'a mapping' : `${typeof rendered} ${JSON.stringify(rendered)}`;
  throw new PgplayError({
    code: 'RENDER',
    message: `loop rendered to ${what}, not a list`,
    expected: 'a list',
    hint: 'loop takes a list, or a template that is exactly one {{name}} of a list, such as "{{found.rows}}"',
  });
}

/**
 * What `register` keeps for a looped step on a host: `results` (each item's registered value with its
 * `item` and `item_index`), `changed` and `failed` when any item did, `skipped` when all were. Items
 * done in the resumed run give back what they registered then. `fresh` lists the values of the items
 * that ran now, for the journal.
 */
export function loopRegistered(
  entries: HostEntry[],
  register: string,
): { value: Record<string, unknown>; fresh: Array<{ index: number; value: Record<string, unknown> }> } {
  const fresh: Array<{ index: number; value: Record<string, unknown> }> = [];
  const results: Array<Record<string, unknown>> = [];
  for (const { result, prior, loop } of entries) {
    if (!loop) return { value: { ...registeredValue(result), results: [] }, fresh };
    const earlier = prior?.registered[register] as Record<string, unknown> | undefined;
    const value = earlier ?? { ...registeredValue(result), item: loop.item, item_index: loop.index };
    if (!prior) fresh.push({ index: loop.index, value });
    results.push(value);
  }
  const count = (key: string) => results.filter((r) => r[key] === true).length;
  const changed = count('changed');
  const failed = count('failed');
  const skipped = count('skipped');
  return {
    value: {
      results,
      changed: changed > 0,
      failed: failed > 0,
      skipped: results.length > 0 && skipped === results.length,
      msg: `${results.length} item${results.length === 1 ? '' : 's'}: ${changed} changed, ${failed} failed, ${skipped} skipped`,
    },
    fresh,
  };
}
