import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/setup/sequencer.js';
import { HOOK_TIMEOUT_MS, TEST_TIMEOUT_MS } from './test/support/timeouts.js';

/**
 * How many end-to-end files run at once. Each file owns its ports, loopback subnet, state directory
 * and (on the machines rig) its machines' private /tmp, so two can run side by side; most of their time
 * is spent waiting on servers, checkpoints and restores, not on the CPU. PGPLAY_E2E_WORKERS=1 runs them
 * one at a time (e.g. to read one file's timings on a busy machine).
 */
const E2E_WORKERS = Number(process.env.PGPLAY_E2E_WORKERS ?? 2);

export default defineConfig({
  test: {
    globalSetup: ['test/setup/build.ts'],
    setupFiles: ['test/setup/state-dir.ts'],
    testTimeout: TEST_TIMEOUT_MS,
    hookTimeout: HOOK_TIMEOUT_MS,
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      {
        extends: true,
        // Pure code: as many files at once as there are cores (vitest's default is one fewer: a single
        // worker on CI's two cores, which made the unit tests take 160 s before any e2e file could start),
        // and first, so a broken unit fails fast.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 }, maxWorkers: availableParallelism() },
      },
      {
        extends: true,
        // Real PostgreSQL, pgBackRest and sshd; after the unit tests, so they do not fight over the cores.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          sequence: { groupOrder: 1 },
          maxWorkers: E2E_WORKERS,
          fileParallelism: E2E_WORKERS > 1,
        },
      },
    ],
  },
});
