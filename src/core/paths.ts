import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root (holds templates/, schemas/, playbooks/), whether running from src via tsx or from dist. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHIPPED_TEMPLATES = join(PACKAGE_ROOT, 'templates');
export const SHIPPED_PLAYBOOKS = join(PACKAGE_ROOT, 'playbooks');
export const SCHEMAS_DIR = join(PACKAGE_ROOT, 'schemas');
/** The CLI as the `pgplay` bin runs it: an esbuild bundle of dist/cli/main.js (src/app/bundle-cli.ts), at the depth of dist/cli. */
export const BUNDLE_DIR = join(PACKAGE_ROOT, 'dist', 'bundle');
export const CLI_ENTRY = join(BUNDLE_DIR, 'main.js');
/** esbuild's metafile of the bundle: which modules went into which file (read by tests, never by a run). */
export const BUNDLE_METAFILE = join(PACKAGE_ROOT, 'dist', 'bundle-meta.json');

/** Run journal, locks and the lab's pointer live here unless --state-dir / PGPLAY_STATE_DIR say otherwise. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PGPLAY_STATE_DIR) return resolve(env.PGPLAY_STATE_DIR);
  const base = env.XDG_STATE_HOME ? resolve(env.XDG_STATE_HOME) : join(homedir(), '.local', 'state');
  return join(base, 'pgplay');
}

export function expandHome(path: string): string {
  return path === '~' ? homedir() : path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}
