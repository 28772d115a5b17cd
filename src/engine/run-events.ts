import { errorPayload } from '../core/errors.js';
import type { Step } from '../model/playbook.js';
import type { RunEvent } from './events.js';
import type { HostEntry } from './loop.js';
import type { RunContext } from './run-context.js';

/** The events a run emits about itself and its steps, built from what the engine knows at that point. */

export function runStartEvent(run: RunContext, hosts: string[]): RunEvent {
  return {
    type: 'run-start',
    runId: run.runId,
    playbook: run.playbookFile,
    inventory: run.inventoryFile,
    check: run.options.check,
    hosts,
    steps: run.playbook.steps.map((s) => s.id),
    time: new Date().toISOString(),
  };
}

export function stepStartEvent(step: Step, id: string, hosts: string[], handler: boolean): RunEvent {
  return { type: 'step-start', step: id, name: step.name ?? step.id, hosts, handler, time: new Date().toISOString() };
}

/** One result of a step (or of a loop's item) on a host. */
export function stepResultEvent(step: Step, id: string, host: string, handler: boolean, { result, loop }: HostEntry): RunEvent {
  return {
    type: 'step-result',
    step: id,
    name: step.name ?? step.id,
    host,
    status: result.status,
    handler,
    msg: result.error ? result.error.message : result.outcome?.msg,
    diff: result.outcome?.diff,
    attempts: result.attempts,
    durationMs: result.durationMs,
    ignored: result.ignored || undefined,
    ...(loop ? { item: loop.item, index: loop.index, items: loop.items } : {}),
    error: result.error ? errorPayload(result.error) : undefined,
    time: new Date().toISOString(),
  };
}
