import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';

/*
 * A V8 code cache for the CommonJS files of dist/ (the bundle's chunks, src/app/bundle-cli.ts; the
 * generated validators and precompiled templates), as node 22's
 * module.enableCompileCache() keeps one; node 20 has none. Compiling the ~1 MB a procedure loads is a
 * good part of its start on a slow machine (~70 ms of CPU of a no-change standby run on the benchmark's):
 * with the bytecode and the functions the last run compiled read back from a file, V8 compiles only what
 * that run did not reach.
 *
 * Each file's cache is found by a hash of its content: V8 checks only a cache's length against the source
 * (and its own version and flags), so a file changed in place to the same length would otherwise run the
 * old code's bytecode. A cache is written when the process exits, for the files that had none or whose
 * cache V8 rejected (another node build, other flags), each to a temporary name then renamed: a cache
 * is whole or absent. It is code that runs as whoever runs pgplay, so it lives in that user's own cache
 * directory and is used only when that directory is theirs and no one else may write to it.
 *
 * PGPLAY_COMPILE_CACHE: another directory, or `off`.
 */

/** Beyond this many files the oldest half is removed as a cache is written (a bundle is ~150 files). */
const MAX_ENTRIES = 1000;

/** A compiled file whose cache is written at exit. */
interface Unsaved {
  readonly script: Script;
  readonly file: string;
}

type Compile = (this: Module, content: string, filename: string) => unknown;

/** Where the caches are, for this node and architecture; undefined when off. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const setting = env.PGPLAY_COMPILE_CACHE;
  if (setting === 'off') return undefined;
  const base = setting || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'pgplay', 'compile-cache');
  return join(base, `${process.version}-${process.arch}`);
}

/**
 * From now on, the CommonJS files under `codeRoot` (pgplay's dist/) are compiled with the cache. Nothing
 * happens when the cache is off, its directory cannot be made, or it is not the user's own.
 */
export function enableCompileCache(codeRoot: string, cacheDir: string | undefined = compileCacheDir()): void {
  // Without it a cached file's import() would have no loader; node 20's earliest releases lack it.
  const loader = vmConstants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  if (!cacheDir || !loader || !ownDirectory(cacheDir)) return;
  const unsaved: Unsaved[] = [];
  const proto = Module.prototype as unknown as { _compile: Compile };
  const compile = proto._compile;
  proto._compile = function (content, filename) {
    if (!filename.startsWith(codeRoot + sep)) return compile.call(this, content, filename);
    const file = cacheFile(cacheDir, content);
    let cachedData: Buffer | undefined;
    try {
      cachedData = readFileSync(file);
    } catch {
      cachedData = undefined;
    }
    // V8 sees the hashbang only at a script's very start, which the wrapper takes.
    const source = content.startsWith('#!') ? `//${content.slice(2)}` : content;
    const script = new Script(Module.wrap(source), { filename, cachedData, importModuleDynamically: loader as never });
    if (cachedData === undefined || script.cachedDataRejected) unsaved.push({ script, file });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return wrapper.call(this.exports, this.exports, requireFor(this), this, filename, dirname(filename));
  };
  process.once('exit', () => save(cacheDir, unsaved));
}

/** A file's cache, by its content (V8 compares a cache with its source by length only). */
export function cacheFile(cacheDir: string, content: string): string {
  return join(cacheDir, `${createHash('md5').update(content).digest('hex')}.v8`);
}

/** The require() node gives a module's code (its internal makeRequireFunction). */
function requireFor(mod: Module): NodeJS.Require {
  const statics = Module as unknown as {
    _resolveFilename(request: string, parent: Module, isMain: boolean, options?: { paths?: string[] }): string;
    _resolveLookupPaths(request: string, parent: Module): string[] | null;
    _extensions: NodeJS.RequireExtensions;
    _cache: NodeJS.Dict<NodeJS.Module>;
  };
  const require = ((id: string) => mod.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) => statics._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => statics._resolveLookupPaths(request, mod);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = statics._extensions;
  require.cache = statics._cache;
  return require;
}

/** Made (0700) when missing; usable only when it is a directory of this user's that no one else may write to. */
function ownDirectory(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const parent = statSync(dirname(dir));
    const own = statSync(dir);
    const uid = process.getuid?.();
    return [parent, own].every((s) => s.isDirectory() && s.uid === uid && (s.mode & 0o022) === 0);
  } catch {
    return false;
  }
}

/** Writes the caches of the files compiled without one; a failure only leaves a cache unwritten. */
function save(cacheDir: string, unsaved: readonly Unsaved[]): void {
  if (unsaved.length === 0) return;
  for (const { script, file } of unsaved) {
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
      renameSync(temporary, file);
    } catch {
      try {
        unlinkSync(temporary);
      } catch {
        // Never written.
      }
    }
  }
  prune(cacheDir);
}

/** Keeps the directory bounded: past MAX_ENTRIES files, the older half goes (builds come and go). */
function prune(cacheDir: string): void {
  try {
    const names = readdirSync(cacheDir);
    if (names.length <= MAX_ENTRIES) return;
    const aged = names.flatMap((name) => {
      try {
        return [{ name, mtime: statSync(join(cacheDir, name)).mtimeMs }];
      } catch {
        return [];
      }
    });
    aged.sort((a, b) => a.mtime - b.mtime);
    for (const { name } of aged.slice(0, aged.length - MAX_ENTRIES / 2)) unlinkSync(join(cacheDir, name));
  } catch {
    // Another process pruned it meanwhile, or it went away: nothing to keep bounded.
  }
}
