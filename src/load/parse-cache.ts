/**
 * The parse cache of the user's YAML files (inventory, playbooks), in the state directory: for a file
 * whose text has not changed since a run of the same build, the data its last parse gave and the shape
 * checks that text passed, so the run loads neither the YAML library nor the generated validators.
 *
 * Trust: an entry is used only when it names the running build (the validators' stamp: a changed build
 * may judge the same text otherwise) and the SHA-256 of exactly the text just read, and only from a file
 * owned by this user that nobody else can read or write (0600, in a 0700 directory). Anything else (a
 * torn write, another build's entry, a foreign or corrupted file) is ignored and the text is parsed and
 * checked as if there were no cache. Positions are not cached: an error in a cached document parses its
 * text then, so it is placed (file:line:col) exactly as before (yaml.ts).
 *
 * Secrets: the entry holds the file's data, so it is kept like the source and no more readable than
 * the user running pgplay already can read it: mode 0600, in the state directory (0700), one entry per
 * source path (named by the path's hash), replaced when the text changes, so an old version of a file
 * does not linger past the next run. An inventory never holds a secret's value: the schema accepts
 * secrets only as {env}/{file} references, resolved at run time and never written here; an entry is
 * written only after its text passed the checks.
 */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ownedAlone, PRIVATE } from '../core/fs-checks.js';
import { UNSTAMPED } from '../schema/build-stamp.js';

export interface ParseCache {
  readonly dir: string;
  /** The running build's stamp (schema/build-stamp.ts); unstamped code never uses or writes a cache. */
  readonly stamp: string;
}

/** The cache of a state directory. */
export function parseCacheIn(stateDir: string, stamp: string): ParseCache {
  return { dir: join(stateDir, 'cache', 'parsed'), stamp };
}

interface Entry {
  format: 1;
  build: string;
  sha256: string;
  data: unknown;
  /** The shape checks (e.g. "inventory") this exact text passed under this build. */
  passed: string[];
}

export interface CachedParse {
  data: unknown;
  passed: ReadonlySet<string>;
}

export function textSha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function entryFile(cache: ParseCache, file: string): string {
  return join(cache.dir, `${textSha256(file).slice(0, 32)}.json`);
}

const usable = (cache: ParseCache) => cache.stamp !== UNSTAMPED;

/** The entry of `file` for exactly `text` under this build, or undefined. Never throws. */
export async function readCachedParse(cache: ParseCache, file: string, text: string): Promise<CachedParse | undefined> {
  if (!usable(cache)) return undefined;
  let raw: string;
  try {
    const handle = await open(entryFile(cache, file), 'r');
    try {
      const st = await handle.stat();
      if (!st.isFile() || !ownedAlone(st, PRIVATE)) return undefined;
      raw = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return undefined;
  }
  let entry: Partial<Entry>;
  try {
    entry = JSON.parse(raw) as Partial<Entry>;
  } catch {
    return undefined;
  }
  if (entry === null || typeof entry !== 'object' || entry.format !== 1 || entry.build !== cache.stamp || entry.sha256 !== textSha256(text)) return undefined;
  if (!Array.isArray(entry.passed) || !entry.passed.every((p) => typeof p === 'string') || !('data' in entry)) return undefined;
  return { data: entry.data, passed: new Set(entry.passed) };
}

/**
 * Records that `text` (of `file`) gave the data `json` (its JSON text, taken right after the parse) and
 * passed the checks `passed`, replacing the file's entry atomically (a temporary file renamed over it).
 * A cache that cannot be written is no error: the next run parses again.
 */
export async function writeCachedParse(cache: ParseCache, file: string, text: string, json: string, passed: Iterable<string>): Promise<void> {
  if (!usable(cache)) return;
  const head: Omit<Entry, 'data'> = { format: 1, build: cache.stamp, sha256: textSha256(text), passed: [...new Set(passed)].sort() };
  const body = `${JSON.stringify(head).slice(0, -1)},"data":${json}}`;
  const target = entryFile(cache, file);
  const temp = `${target}.${process.pid}.tmp`;
  try {
    await mkdir(cache.dir, { recursive: true, mode: 0o700 });
    // O_EXCL: never writes through a file or link someone else put there.
    await writeFile(temp, body, { mode: 0o600, flag: 'wx' });
    await rename(temp, target);
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}

/** The data's JSON text, or undefined when JSON would not give back exactly the same data (then it is not cached). */
export function exactJson(data: unknown): string | undefined {
  const json = JSON.stringify(data);
  return json !== undefined && isDeepStrictEqual(JSON.parse(json), data) ? json : undefined;
}
