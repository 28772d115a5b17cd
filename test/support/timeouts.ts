/**
 * How long a test and a hook may take (vitest.config.ts uses these), and so how long a CLI call made
 * by a test may take: see cli.ts.
 */
export const TEST_TIMEOUT_MS = 120_000;
export const HOOK_TIMEOUT_MS = 180_000;
