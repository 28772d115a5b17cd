/**
 * The YAML library, required on first use: a run whose files all come from the parse caches (the build's
 * for shipped playbooks, yaml-cache.ts; the state directory's for the user's files, parse-cache.ts) never
 * loads it. Required, not imported: placing an error of a cached document (file:line:col) parses its text
 * synchronously. The bundle (src/app/bundle-cli.ts) ships the library as one CommonJS file beside its
 * chunks and names it in PGPLAY_BUNDLED_YAML; unbundled code (dist/, the tests) requires the package.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

declare const PGPLAY_BUNDLED_YAML: string | undefined;

const require = createRequire(import.meta.url);

export type YamlLib = typeof Yaml;

let lib: YamlLib | undefined;

export function yamlLib(): YamlLib {
  lib ??= require(typeof PGPLAY_BUNDLED_YAML === 'string' ? PGPLAY_BUNDLED_YAML : 'yaml') as YamlLib;
  return lib;
}

/** Whether this process has needed the library (tests check that cached files do not). */
export function yamlLibLoaded(): boolean {
  return lib !== undefined;
}
