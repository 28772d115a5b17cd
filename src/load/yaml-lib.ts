/**
 * The YAML library, required on first use: a run whose files all come from the parse caches (the build's
 * for shipped playbooks, yaml-cache.ts; the state directory's for the user's files, parse-cache.ts) never
 * loads it. Required, not imported: placing an error of a cached document (file:line:col) parses its text
 * synchronously. The bundle ships it as one file (core/libraries.ts).
 */
import type * as Yaml from 'yaml';
import { requireLibrary } from '../core/libraries.js';

export type YamlLib = typeof Yaml;

let lib: YamlLib | undefined;

export function yamlLib(): YamlLib {
  lib ??= requireLibrary<YamlLib>('yaml');
  return lib;
}

/** Whether this process has needed the library (tests check that cached files do not). */
export function yamlLibLoaded(): boolean {
  return lib !== undefined;
}
