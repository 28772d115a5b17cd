import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Each test file gets its own pgplay state directory (journal, locks, lab pointer), so CLI runs in
// tests never read or lock the user's ~/.local/state/pgplay, nor each other's.
process.env.PGPLAY_STATE_DIR = mkdtempSync(join(tmpdir(), 'pgplay-test-state-'));
