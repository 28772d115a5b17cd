import type { HostStepResult } from './step.js';

/** What the run was told about an earlier run it resumes, keyed by `step@host` (`handler:name@host`). */
export interface PriorResult {
  status: 'ok' | 'changed';
  registered: Record<string, unknown>;
  /** A loop's item: the item it was (redacted), so a changed list is not taken for the same one. */
  item?: unknown;
}

/** `step@host`, `handler:name@host`; a loop's item is `step[index]@host`. */
export function priorKey(step: string, host: string, handler: boolean, index?: number): string {
  return `${handler ? 'handler:' : ''}${step}${index === undefined ? '' : `[${index}]`}@${host}`;
}

/** What a step/host pair (or a loop's item) that succeeded in the resumed run reports now: skipped, not run again. */
export function doneBefore(resumedFrom: string | undefined): HostStepResult {
  const msg = resumedFrom ? `done in run ${resumedFrom}` : 'done in the resumed run';
  return { status: 'skipped', outcome: { changed: false, skipped: true, msg }, attempts: 0, durationMs: 0 };
}
