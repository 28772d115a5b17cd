/**
 * The CommonJS libraries pgplay requires synchronously on first use (yaml, Handlebars' runtime and its
 * compiler): from node_modules when pgplay runs unbundled (dist/, the tests), and from one file each
 * beside the bundle's chunks when the bin runs the bundle (src/app/bundle-cli.ts names them in
 * PGPLAY_BUNDLED_LIBRARIES). Required from node_modules a library is tens of files, each resolved, read
 * and compiled on its own; as one file it costs a fraction of that (Handlebars' runtime ~13 ms -> ~3 ms,
 * the whole of it ~36 ms -> ~9 ms, yaml ~65 ms -> ~15 ms).
 */
import { createRequire } from 'node:module';

/** Package specifier -> the bundle's file for it, relative to the bundle's chunks (set by the bundle only). */
declare const PGPLAY_BUNDLED_LIBRARIES: Readonly<Record<string, string>> | undefined;

const require = createRequire(import.meta.url);

export type BundledLibrary = 'yaml' | 'handlebars/runtime' | 'handlebars';

export function requireLibrary<T>(specifier: BundledLibrary): T {
  const bundled = typeof PGPLAY_BUNDLED_LIBRARIES === 'object' ? PGPLAY_BUNDLED_LIBRARIES[specifier] : undefined;
  return require(bundled ?? specifier) as T;
}
