/**
 * The CommonJS libraries pgplay requires synchronously on first use (yaml, Handlebars' runtime and its
 * compiler): from node_modules when pgplay runs unbundled (dist/, the tests), and from one file each
 * beside the bundle's chunks when the bin runs the bundle (src/app/bundle-cli.ts names them in
 * PGPLAY_BUNDLED_LIBRARIES). Required from node_modules a library is tens of files, each resolved, read
 * and compiled on its own; as one file it costs a fraction of that (Handlebars' runtime ~13 ms -> ~3 ms,
 * the whole of it ~36 ms -> ~9 ms, yaml ~65 ms -> ~15 ms).
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireExact } from './require-exact.js';

/**
 * JSON of package specifier -> the bundle's file for it, relative to the bundle's chunks (set by the bundle
 * only). A string rather than an object: esbuild inlines a string where it is named, while an object
 * define becomes a module that every module of the bundle initializes.
 */
declare const PGPLAY_BUNDLED_LIBRARIES: string | undefined;

const require = createRequire(import.meta.url);

export type BundledLibrary = 'yaml' | 'handlebars/runtime' | 'handlebars';

let bundledFiles: Readonly<Record<string, string>> | undefined;

export function requireLibrary<T>(specifier: BundledLibrary): T {
  if (typeof PGPLAY_BUNDLED_LIBRARIES === 'string') bundledFiles ??= JSON.parse(PGPLAY_BUNDLED_LIBRARIES) as Record<string, string>;
  const bundled = bundledFiles?.[specifier];
  // The bundle's file, beside this chunk, by its exact path (require-exact.ts).
  if (bundled) return requireExact(join(dirname(fileURLToPath(import.meta.url)), bundled), undefined, () => require(bundled)) as T;
  return require(specifier) as T;
}
