import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A checkout's `pgplay` command (package.json "bin") as a shell runs it: bin/pgplay, the launcher, itself; a
 * bin that is node code (dist/bundle/main.js or dist/cli/main.js, in checkouts from before the launcher)
 * through node. The argv to put the command's arguments after.
 */
export function pgplayBin(root: string): string[] {
  const bin = join(root, (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { pgplay: string } }).bin.pgplay);
  return bin.endsWith('.js') ? ['node', bin] : [bin];
}
