import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { runEndLine } from '../../src/report/format.js';

type RunEnd = Extract<RunEvent, { type: 'run-end' }>;
const end = (over: Partial<RunEnd>): RunEnd => ({ type: 'run-end', runId: 'r1', status: 'ok', exitCode: 0, recap: {}, durationMs: 2300, time: '2026-12-06T00:00:00.000Z', ...over });

describe("the human output's last line", () => {
  it('an interrupted run says what interrupted it', () => {
    expect(runEndLine(end({ status: 'interrupted', exitCode: 130, interruptedBy: 'hung up (SIGHUP)' }))).toBe('run r1 interrupted (exit 130) in 2.3s: hung up (SIGHUP)');
  });

  it('a failed run names the step, the host and the error, with its hint', () => {
    const line = runEndLine(end({ status: 'failed', exitCode: 1, error: { code: 'STEP_FAILED', message: 'rc 1', exitCode: 1, step: 'restore', host: 'db2', hint: 'look at the log' } }));
    expect(line).toBe('run r1 failed (exit 1) in 2.3s\nstep restore, host db2: rc 1\n  hint: look at the log');
  });
});
