import { lstatSync } from 'node:fs';
import Module from 'node:module';

/** What of node's CommonJS loader this uses beyond its public types. */
interface Loader {
  _cache: Record<string, LoadableModule | undefined>;
}
interface LoadableModule extends Module {
  load(filename: string): void;
}

/**
 * require() of a CommonJS file named by its exact, absolute path, without node's resolution: for the files
 * of dist/ that pgplay's own code names exactly (a bundle chunk's sibling, a generated validator, a
 * precompiled template). node's require() resolves every call anew (a stat and a realpath for a file not
 * yet loaded, a lookup for one that is): ~800 calls in a procedure's run, most of them a chunk asking for
 * a chunk that is already loaded. The file is loaded as require() loads it once resolved
 * (Module.prototype.load: the extension's handler, the package's type, node's module cache, so the same
 * file required either way is one module).
 *
 * `fallback` is require() of the same file the usual way: for a missing file (node's own error), for a
 * link, which require() keys by its target (a farm of per-file links still loads each file once), and for
 * a module in the cache that has not finished loading.
 */
export function requireExact(filename: string, parent: Module | undefined, fallback: () => unknown): unknown {
  const cache = (Module as unknown as Loader)._cache;
  const cached = cache[filename];
  // A module in the cache that has not finished loading (a cycle, or one the ESM loader put there
  // before running it) is node's to answer.
  if (cached) return cached.loaded ? cached.exports : fallback();
  if (!isPlainFile(filename)) return fallback();
  const child = new Module(filename, parent) as LoadableModule;
  cache[filename] = child;
  let loaded = false;
  try {
    child.load(filename);
    loaded = true;
  } finally {
    // As require(): a file that failed to load is not kept, the next require() tries it again.
    if (!loaded) delete cache[filename];
  }
  return child.exports;
}

/** Whether `filename` is a regular file itself (not a link); false for any error: require() then says what it is. */
function isPlainFile(filename: string): boolean {
  try {
    return lstatSync(filename, { throwIfNoEntry: false })?.isFile() ?? false;
  } catch {
    return false;
  }
}
