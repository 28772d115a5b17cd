import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

// Each test file gets its own pgplay state directory (journal, locks, lab pointer), so CLI runs in
// tests never read or lock the user's ~/.local/state/pgplay, nor each other's.
const stateDir = mkdtempSync(join(tmpdir(), 'pgplay-test-state-'));
process.env.PGPLAY_STATE_DIR = stateDir;

// Removed once the file's tests are done (registered first, this hook runs after the file's own
// afterAll hooks, which stop whatever still uses it): a whole run left ~290 of these in /tmp.
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));
