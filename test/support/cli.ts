import { execa, type Result } from 'execa';
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TestRunner } from 'vitest';
import { HOOK_TIMEOUT_MS } from './timeouts.js';

/** The built CLI, as the end-to-end tests run it: what the `pgplay` bin (bin/pgplay) runs, the bundle. */
export const CLI = resolve('dist/bundle/main.js');

/**
 * Time a CLI gets between SIGTERM and SIGKILL: SIGTERM lets it stop its commands within its grace
 * period (10 s by default) and journal the run; SIGKILL would leave those commands running.
 */
const KILL_GRACE_MS = 15_000;

export interface CliOptions {
  env?: Record<string, string>;
  cwd?: string;
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Limits for a CLI process started by a test, for execa: it is stopped (SIGTERM, SIGKILL 15 s later)
 * when it has run for all but the last fifth (at most 20 s) of the time its test (or hook) may take,
 * which leaves the CLI its grace period and the test the time to fail with the CLI's output; and at
 * once when vitest gives up on the test (timeout, cancelled run). vitest itself never stops a
 * timed-out test's children: without this a hung CLI would outlive its test.
 */
export function cliLimits(): { timeout: number; forceKillAfterDelay: number; cancelSignal?: AbortSignal } {
  const test = TestRunner.getCurrentTest();
  const budget = test?.timeout ?? HOOK_TIMEOUT_MS;
  return {
    timeout: Math.max(1_000, budget - Math.min(20_000, budget / 5)),
    forceKillAfterDelay: KILL_GRACE_MS,
    ...(test ? { cancelSignal: test.context.signal } : {}),
  };
}

/** Starts the built CLI with plain output (CI=true), within cliLimits(). Await it with `finished`. */
export function spawnCli(args: string[], options: CliOptions = {}) {
  return execa('node', [CLI, ...args], {
    reject: false,
    env: { CI: 'true', ...options.env },
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...cliLimits(),
  });
}

/** Runs the built CLI to its end; one stopped for running too long fails the test with what it printed. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  const r = finished(await spawnCli(args, options));
  profile(args, r.stdout);
  return r;
}

/** PGPLAY_TEST_PROFILE=<file>: appends each run's duration and its steps of a second or more (--output json runs). */
function profile(args: string[], stdout: string): void {
  const file = process.env.PGPLAY_TEST_PROFILE;
  if (!file) return;
  const lines: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as { type?: string; step?: string; host?: string; durationMs?: number; status?: string };
      if (e.type === 'step-result' && (e.durationMs ?? 0) >= 1000) lines.push(`    ${e.durationMs} ${e.step}@${e.host} ${e.status}`);
      if (e.type === 'run-end') lines.unshift(`${e.durationMs} ${args.slice(0, 2).join(' ').replace(/.*\//, '')} ${args.filter((a) => a.includes('=')).join(' ')} -> ${e.status}`);
    } catch {
      // not an event
    }
  }
  if (lines.length) appendFileSync(file, `${lines.join('\n')}\n`);
}

/** The outcome of a CLI run; throws, with the output tails, when the CLI had to be stopped by its limits. */
export function finished(r: Result): CliResult {
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.timedOut || r.isCanceled) {
    const why = r.timedOut ? `was still running after ${Math.round(r.durationMs / 1000)} s and was killed` : 'was killed because its test timed out or the run was cancelled';
    throw new Error(`${r.command} ${why}\n--- stdout (last 3000 characters)\n${stdout.slice(-3000)}\n--- stderr\n${stderr.slice(-3000)}`);
  }
  return { exitCode: r.exitCode ?? -1, stdout, stderr };
}

