import { readFile } from 'node:fs/promises';
import type { Document, Node, Pair, YAMLError } from 'yaml';
import { PgplayError, PgplayErrors, type SourcePosition } from '../core/errors.js';
import { PARSED_YAML_DIR, cachedYamlData } from './yaml-cache.js';
import { yamlLib } from './yaml-lib.js';
import { exactJson, readCachedParse, writeCachedParse, type ParseCache } from './parse-cache.js';

// The document types live in model/ and the error order in core/, so that schema/ can name them without
// loading the YAML parser (and without importing load/, which imports schema/).
import { sortErrors } from '../core/sort-errors.js';
import type { DocPath, LoadedDocument } from '../model/document.js';

export type { DocPath, LoadedDocument };
export { sortErrors };

const MESSAGES: Partial<Record<string, string>> = {
  TAB_AS_INDENT: 'tabs are not allowed for indentation; indent with spaces',
  MULTIPLE_DOCS: 'only one YAML document per file is allowed',
};

/**
 * Parses one YAML document whose top level is a mapping. Every syntax problem (and every warning,
 * such as an unknown `!tag`, because pgplay would silently misread it) becomes a YAML error with its
 * exact position; all of them are thrown together as PgplayErrors.
 */
export function parseYaml<T = unknown>(text: string, file: string): LoadedDocument<T> {
  parsedTexts++;
  const { isMap, isScalar, isSeq, parseAllDocuments, visit } = yamlLib();
  // logLevel error: the library would otherwise print its own warnings (collection keys) on stderr.
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false, merge: true, logLevel: 'error' });
  // Positions come from the text itself: the library's LineCounter misses line breaks inside
  // multi-line scalars while it recovers from syntax errors, which shifts every later position.
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const at = (offset: number): SourcePosition => ({ file, ...linePos(lineStarts, offset) });
  // The parser places some errors on the indentation before the offending token; point at the token.
  const fail = (offset: number, message: string, expected?: string) =>
    new PgplayError({ code: 'YAML', message, expected, position: at(skipSpaces(text, offset)) });

  const doc = docs[0];
  const errors: PgplayError[] = [];
  if (doc) {
    for (const e of [...doc.errors, ...doc.warnings]) errors.push(fail(e.pos[0], describeYamlError(e, doc, at)));
  }
  for (const extra of docs.slice(1)) {
    errors.push(fail(extra.range[0], MESSAGES.MULTIPLE_DOCS!, 'a single document (remove the "---" separator)'));
  }
  if (errors.length) throw new PgplayErrors(sortErrors(errors));

  const contents = doc?.contents;
  if (!doc || !contents || (isScalar(contents) && contents.value === null)) {
    throw new PgplayErrors([fail(0, 'the file is empty', 'a mapping of keys and values')]);
  }
  if (!isMap(contents)) {
    const found = isSeq(contents) ? 'a list' : 'a single value';
    throw new PgplayErrors([
      fail(contents.range?.[0] ?? 0, `the top level must be a mapping (key: value), found ${found}`, 'a mapping of keys and values'),
    ]);
  }

  let data: T;
  try {
    data = doc.toJS({ maxAliasCount: 1000 }) as T;
  } catch (e) {
    // The library refuses alias expansions that explode ("billion laughs"); name the first alias.
    let aliasAt = 0;
    visit(doc, {
      Alias(_, node) {
        aliasAt = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const why = /alias/i.test((e as Error).message) ? 'aliases expand to too many nodes (more than 1000)' : (e as Error).message;
    throw new PgplayErrors([fail(aliasAt, why, 'aliases that each expand to a small value')]);
  }
  return {
    file,
    text,
    data,
    position: (path, part = 'value') => at(locate(doc, path, part)),
  };
}

function linePos(lineStarts: number[], offset: number): { line: number; col: number } {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lineStarts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, col: offset - lineStarts[lo]! + 1 };
}

function skipSpaces(text: string, offset: number): number {
  let i = offset;
  while (text[i] === ' ') i++;
  return text[i] === undefined || text[i] === '\n' || text[i] === '\r' ? offset : i;
}

/** How many texts this process parsed with the YAML library (tests count what the build's cache saves). */
let parsedTexts = 0;
export function yamlParseCount(): number {
  return parsedTexts;
}

/** A document whose data the build parsed: its positions come from parsing the text on first need. */
function cachedDocument<T>(text: string, file: string, data: T): LoadedDocument<T> {
  let parsed: LoadedDocument<T> | undefined;
  return {
    file,
    text,
    data,
    position: (path, part) => {
      parsed ??= parseYaml<T>(text, file);
      return parsed.position(path, part);
    },
  };
}

/**
 * Reads and parses a YAML file; an unreadable file is a usage error naming the path. A shipped
 * playbook's data comes from the build's cache (`parsedDir`; false parses every file).
 */
export async function loadYamlFile<T = unknown>(file: string, parsedDir: string | false = PARSED_YAML_DIR): Promise<LoadedDocument<T>> {
  const text = await readYamlText(file);
  const cached = await cachedYamlData(parsedDir, text);
  if (cached !== undefined) return cachedDocument(text, file, cached as T);
  return parseYaml<T>(text, file);
}

export interface CachedYamlLoad<T> {
  doc: LoadedDocument<T>;
  /** The shape checks this exact text passed under this build, by the parse cache (parse-cache.ts). */
  passed: ReadonlySet<string>;
  /** Records that the text passed the shape check `check`; keeps the data as the load gave it, before any caller changed it. */
  remember(check: string): Promise<void>;
}

/**
 * loadYamlFile through the state directory's parse cache: an unchanged text's data (and the checks it
 * passed) come from the cache, without the YAML library; any other text is loaded as by loadYamlFile.
 * Without a cache (no state directory), loadYamlFile's document, no check known passed, nothing remembered.
 */
export async function loadYamlFileCached<T = unknown>(file: string, cache: ParseCache | undefined, parsedDir: string | false = PARSED_YAML_DIR): Promise<CachedYamlLoad<T>> {
  if (!cache) return { doc: await loadYamlFile<T>(file, parsedDir), passed: new Set(), remember: async () => undefined };
  const text = await readYamlText(file);
  const hit = await readCachedParse(cache, file, text);
  let doc: LoadedDocument<T>;
  if (hit) doc = cachedDocument(text, file, hit.data as T);
  else {
    const built = await cachedYamlData(parsedDir, text);
    doc = built !== undefined ? cachedDocument(text, file, built as T) : parseYaml<T>(text, file);
  }
  // Taken now, before any caller changes the data; a hit's data came from JSON, so it needs no round-trip check.
  const json = hit ? JSON.stringify(hit.data) : exactJson(doc.data);
  const passed = new Set(hit?.passed);
  return {
    doc,
    passed: hit?.passed ?? new Set(),
    remember: async (check) => {
      if (json === undefined || passed.has(check)) return;
      passed.add(check);
      await writeCachedParse(cache, file, text, json, passed);
    },
  };
}

async function readYamlText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : String((e as Error).message);
    throw new PgplayErrors([new PgplayError({ code: 'USAGE', message: `cannot read ${file}: ${why}`, cause: e })]);
  }
}

function describeYamlError(e: YAMLError, doc: unknown, at: (offset: number) => SourcePosition): string {
  if (e.code === 'DUPLICATE_KEY' && doc instanceof yamlLib().Document) {
    const dup = duplicateKeyAt(doc, e.pos[0]);
    if (!dup) return 'duplicate key';
    const first = dup.firstOffset === undefined ? '' : ` (first defined at line ${at(dup.firstOffset).line})`;
    return `duplicate key "${dup.key}"${first}`;
  }
  const known = MESSAGES[e.code];
  if (known) return known;
  // The library's own wording is good; it only needs our casing and no trailing period.
  const m = e.message.replace(/\.$/, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}

function duplicateKeyAt(doc: Document, offset: number): { key: string; firstOffset?: number } | undefined {
  let found: { key: string; firstOffset?: number } | undefined;
  const { visit } = yamlLib();
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const pair of map.items) {
        const key = keyText(pair);
        const start = (pair.key as Node | null)?.range?.[0];
        if (key === undefined || start === undefined) continue;
        if (start === offset && seen.has(key)) {
          found = { key, firstOffset: seen.get(key) };
          return visit.BREAK;
        }
        if (!seen.has(key)) seen.set(key, start);
      }
      return undefined;
    },
  });
  return found;
}

function keyText(pair: Pair): string | undefined {
  const k = pair.key;
  const { isScalar } = yamlLib();
  // A merge key's value is a Symbol; its source text is what the user wrote.
  if (isScalar(k)) return typeof k.value === 'symbol' ? k.source : String(k.value);
  return undefined;
}

/**
 * Offset of the node at `path`, or of the deepest ancestor that exists. Aliases are followed to
 * their anchor and merge keys (`<<: *defaults`) are searched, so a value that came from an anchor is
 * placed where it was written.
 */
function locate(doc: Document, path: DocPath, part: 'key' | 'value'): number {
  const { isMap, isScalar, isSeq } = yamlLib();
  let node: unknown = doc.contents;
  let best = (doc.contents as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    node = resolveAlias(doc, node);
    const seg = path[i]!;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = findPair(doc, node.items as Pair[], String(seg));
      if (!pair) return best;
      const keyStart = (pair.key as Node | null)?.range?.[0];
      if (last && part === 'key' && keyStart !== undefined) return keyStart;
      const value = pair.value as Node | null;
      const valueStart = value?.range?.[0];
      const emptyValue = !value || (isScalar(value) && value.value === null && value.source === '');
      if (emptyValue || valueStart === undefined) return keyStart ?? best;
      best = valueStart;
      node = value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      const start = item?.range?.[0];
      if (start === undefined) return best;
      best = start;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function findPair(doc: Document, items: Pair[], key: string): Pair | undefined {
  const { isMap, isSeq } = yamlLib();
  const direct = items.find((p) => keyText(p) === key);
  if (direct) return direct;
  for (const p of items) {
    if (keyText(p) !== '<<') continue;
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const s of sources) {
      const target = resolveAlias(doc, s);
      if (isMap(target)) {
        const hit = findPair(doc, target.items as Pair[], key);
        if (hit) return hit;
      }
    }
  }
  return undefined;
}

function resolveAlias(doc: Document, node: unknown): unknown {
  const { isAlias, isPair } = yamlLib();
  let n = node;
  for (let guard = 0; isAlias(n) && guard < 100; guard++) n = n.resolve(doc);
  return isPair(n) ? n.value : n;
}
