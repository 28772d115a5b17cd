import { EXIT, type PgplayError } from '../core/errors.js';
import type { RecapCounts, RunEvent } from './events.js';
import type { HostEntry } from './loop.js';
import { isToleratedUnreachable } from './unreachable.js';

export type RunStatus = Extract<RunEvent, { type: 'run-end' }>['status'];

/**
 * What a run learns from its steps' results: the recap per host, the failure that decides the exit
 * code, whether a guard or lock refused, and whether anything ran at all (which tells a run that
 * changed nothing, exit 2 on bad input, from a failed one, exit 1 and resumable).
 */
export class RunTally {
  readonly recap: Record<string, RecapCounts> = {};
  failure?: PgplayError;
  refused = false;
  /**
   * Whether any step got as far as its action on any host (in this run or the one it resumes): from
   * then on an invalid input is a failed run (exit 1, resumable), no longer "nothing was run" (exit 2).
   */
  private ran = false;

  /** check: under plan nothing is ever changed, so bad input met there is still "nothing was run". */
  constructor(private readonly check: boolean) {}

  /** Counts one result of a step (or a loop's item) on a host; true when it fails the step. */
  count(host: string, { result, prior }: HostEntry): boolean {
    const counts = (this.recap[host] ??= { ok: 0, changed: 0, skipped: 0, failed: 0, unreachable: 0 });
    counts[result.status]++;
    if (result.error?.code === 'TRANSPORT' || isToleratedUnreachable(result)) counts.unreachable++;
    const acted = result.status === 'ok' || result.status === 'changed' || (result.status === 'failed' && result.error?.exitCode !== EXIT.INVALID);
    if (!this.check && (prior || acted)) this.ran = true;
    if (result.status !== 'failed' || result.ignored) return false;
    if (!this.failure || (result.error && this.failure.exitCode < result.error.exitCode)) this.failure = result.error;
    if (result.error?.code === 'GUARD' || result.error?.code === 'LOCK') this.refused = true;
    return true;
  }

  /** A refusal that stops the run whatever the step's hosts reported (a second primary appeared). */
  refuse(error: PgplayError): void {
    this.failure = error;
    this.refused = true;
  }

  /**
   * A step ahead cannot take its input (preflight-render.ts): the run stops before its first change, so
   * it is invalid input (exit 2) even after the guards before it ran.
   */
  refuseInput(error: PgplayError): void {
    this.failure = error;
    this.inputRefused = true;
  }

  private inputRefused = false;

  /** How the run ends, and its exit code. */
  outcome(interrupted: boolean): { status: RunStatus; exitCode: number } {
    const failure = this.failure;
    const invalid = failure?.exitCode === EXIT.INVALID && (!this.ran || this.inputRefused);
    const status: RunStatus = interrupted ? 'interrupted' : this.refused ? 'refused' : failure ? (invalid ? 'invalid' : 'failed') : 'ok';
    const exitCode = interrupted ? EXIT.INTERRUPTED : failure ? (failure.exitCode === EXIT.INVALID && !invalid ? EXIT.FAILED : failure.exitCode) : EXIT.OK;
    return { status, exitCode };
  }
}
