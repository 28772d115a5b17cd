/**
 * The parsed data of the shipped playbooks, written by the build (yaml-cache-build.ts) as one JSON file
 * per playbook under dist/precompiled/yaml/, named by the hash of the YAML text: an edited playbook or a
 * user's own finds no file and is parsed as before. Positions are not cached: a document from the cache
 * parses its text the first time an error must be placed (file:line:col), exactly as a parsed one would.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../core/paths.js';

/** Written by `npm run build`; only ever in dist/, never committed. */
export const PARSED_YAML_DIR = join(PACKAGE_ROOT, 'dist', 'precompiled', 'yaml');

export function parsedYamlFile(dir: string, text: string): string {
  return join(dir, `${createHash('sha256').update(text).digest('hex').slice(0, 32)}.json`);
}

/** The data the build parsed from exactly this text, or undefined (no build, not a shipped text). */
export async function cachedYamlData(dir: string | false, text: string): Promise<unknown> {
  if (dir === false) return undefined;
  try {
    return JSON.parse(await readFile(parsedYamlFile(dir, text), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
