import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Newest modification time under a directory. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

/** Modification time of a file, 0 when it does not exist. */
function modified(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * End-to-end tests drive the real CLI (dist/cli/main.js). Build it once before any test file runs when
 * it is missing or older than the sources, so a single `npx vitest run <file>` works too and no test
 * rebuilds dist/ while another one is running it. The build includes the validators generated from
 * the schemas (dist/validators, as `npm run build` makes them); they are generated again when a plain
 * `tsc` rebuilt dist/ after them, and the bundle the `pgplay` bin runs (dist/bundle) after those.
 */
export default function setup(): void {
  let built = modified('dist/cli/main.js');
  if (built === 0 || newest('src') > built) {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
    built = modified('dist/cli/main.js');
  }
  if (modified('dist/validators/manifest.json') < built) execFileSync(process.execPath, ['dist/app/build-validators.js'], { stdio: 'inherit' });
  // The bin runs the bundle of the stamped dist/ (src/app/bundle-cli.ts): bundled again after either changed.
  if (modified('dist/bundle/main.js') < modified('dist/validators/manifest.json')) execFileSync(process.execPath, ['dist/app/bundle-cli.js'], { stdio: 'inherit' });
}
