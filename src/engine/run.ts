import { errorPayload, PgplayError } from '../core/errors.js';
import type { RecapCounts } from './events.js';
import { seedResumed } from './guards.js';
import { Notifications } from './notify.js';
import type { PriorResult } from './prior.js';
import type { RegisteredListener } from './register.js';
import type { RunContext } from './run-context.js';
import { runStartEvent } from './run-events.js';
import { StepScheduler, type HostSelector } from './schedule.js';
import { toPgplayError } from './step.js';
import { RunTally, type RunStatus } from './tally.js';

export interface RunOutcome {
  exitCode: number;
  status: RunStatus;
  recap: Record<string, RecapCounts>;
  error?: PgplayError;
}

export interface RunHooks {
  /**
   * Ctrl-C: once aborted no new step or host starts; running ones go on until run.signal aborts them
   * (the caller aborts it after a grace period). Defaults to run.signal.
   */
  interrupt?: AbortSignal;
  /** Pairs that succeeded in the run being resumed: reported skipped, their notifications and registered values kept. */
  prior?: ReadonlyMap<string, PriorResult>;
  resumedFrom?: string;
  /** Every value a step (or a loop's item, with its index) registers, as it registers it (the journal keeps them for --resume). */
  onRegistered?: RegisteredListener;
}

/**
 * Runs the playbook's steps in order (schedule.ts), then the handlers their changes notified, once
 * each, in the order they are defined (notify.ts), and ends the run with its recap and exit code
 * (tally.ts). DR procedures are sequential across hosts: building a standby after a failed restore
 * helps nobody, so a failed step stops the run once it has completed on every host.
 */
export async function executeRun(run: RunContext, selectHosts: HostSelector, hooks: RunHooks = {}): Promise<RunOutcome> {
  const started = run.options.startedAt ?? Date.now();
  const interrupt = hooks.interrupt ?? run.signal;
  const allHosts = Object.keys(run.hosts).filter((h) => !run.options.limit || run.options.limit.includes(h));
  seedResumed(run, hooks.prior);
  run.emit(runStartEvent(run, allHosts));

  const tally = new RunTally(run.options.check);
  const notifications = new Notifications();
  const scheduler = new StepScheduler(run, tally, notifications, { selectHosts, allHosts, interrupt, ...hooks });
  try {
    let completed = await scheduler.runSteps(run.playbook.steps, '', false);
    if (completed && !interrupt.aborted) {
      for await (const handler of notifications.owed(run, scheduler.stepHosts)) {
        completed = await scheduler.runSteps([handler], '', true);
        if (!completed) break;
      }
    }
  } catch (e) {
    tally.failure = toPgplayError(e);
    tally.failure.step ??= scheduler.currentStep;
  }

  const { status, exitCode } = tally.outcome(interrupt.aborted);
  const failure = tally.failure;
  run.emit({
    type: 'run-end',
    runId: run.runId,
    status,
    exitCode,
    recap: tally.recap,
    durationMs: Math.round(Date.now() - started),
    error: failure ? { ...errorPayload(failure), exitCode } : undefined,
    ...(status === 'interrupted' ? { interruptedBy: interruption(interrupt) } : {}),
    time: new Date().toISOString(),
  });
  return { exitCode, status, recap: tally.recap, error: failure };
}

/**
 * What interrupted a run, for its journal and reports: the reason the CLI aborted it with (a signal, a
 * closed output), else only that it was.
 */
function interruption(interrupt: AbortSignal): string {
  const reason: unknown = interrupt.reason;
  return reason instanceof PgplayError && reason.code === 'INTERRUPTED' ? reason.message : 'interrupted';
}
