/**
 * Temporary directories a test file makes, removed once its tests are done, however they ended: a whole
 * run left ~18 of them in /tmp (session 22), where only a test's own finally had removed some.
 *
 * The hook is registered when a test file first imports this module, before the file's own afterAll
 * hooks, so it runs after them (vitest runs afterAll hooks last-registered first): whatever a file stops
 * in its own afterAll (a server with its data in one of these) is stopped before its directory goes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new directory `/tmp/pgplay-<prefix>-XXXXXX` (mode 0700, as mkdtemp makes it), removed after the file. */
export function fileTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pgplay-${prefix}-`));
  made.push(dir);
  return dir;
}
