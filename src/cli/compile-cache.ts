import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, sep } from 'node:path';
import { Script, constants as vmConstants } from 'node:vm';
import { isDirectory, NOT_WRITABLE_BY_OTHERS, ownedAlone } from '../core/fs-checks.js';
import { requireExact } from '../core/require-exact.js';

/*
 * A V8 code cache for the CommonJS files of dist/ (the bundle's chunks, src/app/bundle-cli.ts; the
 * generated validators and precompiled templates), as node 22's module.enableCompileCache() keeps one;
 * node 20 has none. Compiling the ~1 MB a procedure loads is a good part of its start on a slow machine
 * (~40 ms of a no-change standby run on the benchmark's, with the checks below): with the bytecode and the
 * functions the last run compiled read back from a file, V8 compiles only what that run did not reach.
 *
 * Bytecode runs as whoever runs pgplay, and V8 checks little of a cache (its own version and flags, and the
 * source's length; not its payload, whose corruption crashes or misleads node), so a cache is used only when
 * all of this holds, else the file is compiled from its source as without the cache:
 * - it is found by a hash of the very text V8 compiles (a file changed in place to the same length would
 *   otherwise run the old code);
 * - it carries a hash of its bytecode, checked before V8 sees it (a flipped bit on disk is a miss);
 * - its directory, resolved once, and every directory above it belong to this user or root and no one
 *   else may write to them (or only sticky, as /tmp): no one else can swap a directory or a link on the way;
 * - the file itself, opened without following a link, is a regular file of this user's that no one else
 *   may write to.
 * A run writes, as it exits, the caches of the files that had none or whose cache was refused, each to a
 * new temporary name then renamed: a cache is whole or absent. One directory per node, architecture and
 * set of node's options (V8 refuses caches made under other flags; node:v8's cachedDataVersionTag would
 * say it exactly, but loading that module costs ~4 ms of every start).
 *
 * PGPLAY_COMPILE_CACHE: another directory (absolute), or `off`.
 */

/** Past this many files the directory is emptied, as a cache is written (a build is ~150-450 files). */
const MAX_ENTRIES = 2000;

/** The bytecode's hash, ahead of it in a cache file. */
const CHECK = 'sha256';
const CHECK_BYTES = 32;

/** A compiled file whose cache is written at exit. */
interface Unsaved {
  readonly script: Script;
  readonly file: string;
}

type Compile = (this: Module, content: string, filename: string, format?: string) => unknown;

/** Where the caches are, for this node, architecture and V8 flags; undefined when off or not to be found. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const setting = env.PGPLAY_COMPILE_CACHE;
    if (setting === 'off' || (setting && !isAbsolute(setting))) return undefined;
    // The XDG base directory spec: a relative XDG_CACHE_HOME is to be ignored.
    const xdg = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
    const base = setting || join(xdg, 'pgplay', 'compile-cache');
    const options = createHash('sha1').update(JSON.stringify([process.execArgv, env.NODE_OPTIONS ?? ''])).digest('hex').slice(0, 8);
    return join(base, `${process.version}-${process.arch}-${options}`);
  } catch {
    // No home directory (a uid without a passwd entry and no HOME): no cache.
    return undefined;
  }
}

/**
 * From now on, the CommonJS files under `codeRoot` (pgplay's dist/) are compiled with the cache. Nothing
 * happens when the cache is off, or its directory cannot be made or is not safe (see above).
 */
export function enableCompileCache(codeRoot: string, cacheDir: string | undefined = compileCacheDir()): void {
  // Without it a cached file's import() would have no loader; node 20's earliest releases lack it.
  const loader = vmConstants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  const dir = cacheDir && loader ? safeDirectory(cacheDir) : undefined;
  if (!dir) return;
  const unsaved: Unsaved[] = [];
  const proto = Module.prototype as unknown as { _compile: Compile };
  const compile = proto._compile;
  proto._compile = function (content, filename, format) {
    // An ES module required (format 'module') and files elsewhere are node's to compile.
    if (format === 'module' || !filename.startsWith(codeRoot + sep)) return compile.apply(this, [content, filename, format]);
    // V8 sees the hashbang only at a script's very start, which the wrapper takes.
    const source = content.startsWith('#!') ? `//${content.slice(2)}` : content;
    const file = cacheFile(dir, source);
    const [head, tail] = wrapperParts();
    const wrapped = head + source + tail;
    const cachedData = readCache(file);
    const script = new Script(wrapped, { filename, cachedData, importModuleDynamically: loader as never });
    if (cachedData === undefined || script.cachedDataRejected) unsaved.push({ script, file });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    const moduleDir = dirname(filename);
    return wrapper.call(this.exports, this.exports, requireFor(this, moduleDir), this, filename, moduleDir);
  };
  process.once('exit', () => save(dir, unsaved));
}

/** What node puts around a CommonJS file's source (Module.wrap's parts). */
function wrapperParts(): readonly [string, string] {
  return (Module as unknown as { wrapper: readonly [string, string] }).wrapper;
}

/** The cache of a source, by the very text V8 compiles: the source in node's wrapper (hashed in its parts: no copy). */
export function cacheFile(cacheDir: string, source: string): string {
  const [head, tail] = wrapperParts();
  return join(cacheDir, `${createHash('sha256').update(head).update(source).update(tail).digest('hex').slice(0, 40)}.v8`);
}

/** The bytecode in `file`: undefined unless the file is sound (see above) and its hash holds. */
export function readCache(file: string): Buffer | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedAlone(st, NOT_WRITABLE_BY_OTHERS)) return undefined;
    const stored = readFileSync(fd);
    const data = stored.subarray(CHECK_BYTES);
    return data.length > 0 && createHash(CHECK).update(data).digest().equals(stored.subarray(0, CHECK_BYTES)) ? data : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A cache file's content: the bytecode's hash, then the bytecode. */
export function cacheContent(data: Buffer): Buffer {
  return Buffer.concat([createHash(CHECK).update(data).digest(), data]);
}

/**
 * The directory made (0700) when missing and resolved; undefined unless it is this user's alone and every
 * directory above it is this user's or root's and writable by no one else, or sticky (as /tmp). What exists
 * of the path is checked before anything is made in it: a root run with another user's HOME (sudo -E)
 * leaves nothing of root's in that home.
 */
function safeDirectory(dir: string): string | undefined {
  try {
    let existing = dir;
    while (!isDirectory(existing)) {
      if (dirname(existing) === existing) return undefined;
      existing = dirname(existing);
    }
    if (!safeFrom(realpathSync(existing))) return undefined;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const real = realpathSync(dir);
    const st = statSync(real);
    if (!st.isDirectory() || !ownedAlone(st, NOT_WRITABLE_BY_OTHERS) || !safeFrom(dirname(real))) return undefined;
    if (existing !== dir) pruneSiblings(real);
    return real;
  } catch {
    return undefined;
  }
}

/** Whether `dir` and every directory above it are this user's or root's and writable by no one else, or sticky. */
function safeFrom(dir: string): boolean {
  const uid = process.getuid?.();
  for (let at = dir; ; at = dirname(at)) {
    const s = lstatSync(at);
    const writableByOthers = (s.mode & NOT_WRITABLE_BY_OTHERS) !== 0 && (s.mode & 0o1000) === 0;
    if (!s.isDirectory() || (s.uid !== uid && s.uid !== 0) || writableByOthers) return false;
    if (at === dirname(at)) return true;
  }
}

/**
 * The require() node gives a module's code (its internal makeRequireFunction), except that a file beside
 * the module (`./name.js`, `./name.cjs`: how the bundle's chunks ask for each other) is required by its
 * exact path, without node's resolution (require-exact.ts).
 */
function requireFor(mod: Module, dir: string): NodeJS.Require {
  const statics = Module as unknown as {
    _resolveFilename(request: string, parent: Module, isMain: boolean, options?: { paths?: string[] }): string;
    _resolveLookupPaths(request: string, parent: Module): string[] | null;
    _extensions: NodeJS.RequireExtensions;
    _cache: NodeJS.Dict<NodeJS.Module>;
  };
  const require = ((id: string) => (isSibling(id) ? requireExact(dir + sep + id.slice(2), mod, () => mod.require(id)) : mod.require(id))) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) => statics._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => statics._resolveLookupPaths(request, mod);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = statics._extensions;
  require.cache = statics._cache;
  return require;
}

/** Whether a require() names a file in the requiring module's own directory. */
function isSibling(id: string): boolean {
  return id.startsWith('./') && id.indexOf('/', 2) === -1 && (id.endsWith('.js') || id.endsWith('.cjs'));
}

/**
 * Writes the caches of the files compiled without one. It runs as the process exits: nothing may throw
 * from here (pgplay's exit status is the run's), and a failure only leaves a cache unwritten.
 */
function save(cacheDir: string, unsaved: readonly Unsaved[]): void {
  if (unsaved.length === 0) return;
  prune(cacheDir);
  for (const { script, file } of unsaved) {
    // A new name (O_EXCL: never through a link someone put there), renamed over the cache once whole.
    const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(temporary, cacheContent(script.createCachedData()), { mode: 0o600, flag: 'wx' });
      renameSync(temporary, file);
    } catch {
      try {
        rmSync(temporary, { force: true });
      } catch {
        // The directory went read-only or away: the temporary name stays, as an unwritten cache would.
      }
    }
  }
}

/** Keeps the directory bounded: past MAX_ENTRIES files it is emptied (the files in use are written again). */
function prune(cacheDir: string): void {
  try {
    const names = readdirSync(cacheDir);
    if (names.length < MAX_ENTRIES) return;
    for (const name of names) unlinkSync(join(cacheDir, name));
  } catch {
    // Another process pruned it meanwhile: nothing to keep bounded.
  }
}

/** A new node, architecture or flag set's directory: those of others untouched for 30 days go. */
function pruneSiblings(dir: string): void {
  const parent = dirname(dir);
  const old = Date.now() - 30 * 24 * 3600 * 1000;
  try {
    for (const name of readdirSync(parent)) {
      const path = join(parent, name);
      if (path !== dir && lstatSync(path).isDirectory() && statSync(path).mtimeMs < old) rmSync(path, { recursive: true, force: true });
    }
  } catch {
    // Nothing to prune, or another process did.
  }
}
