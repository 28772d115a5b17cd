import { posix } from 'node:path';
import type Handlebars from 'handlebars';
import { ValueNotRead } from '../core/not-read.js';
import { BLOCKED_KEYS } from '../expr/ast.js';
import { didYouMean } from '../expr/suggest.js';
import { compare, describe, equals, truthy, typeName } from '../expr/values.js';
import type { Loc } from './ast.js';
import { conninfoValue, pgconfValue, shquote } from './quote.js';
import { hbaAddress } from './hba-address.js';

/** A helper refused its input; the renderer adds the template name, line and column from `loc`. */
export class HelperError extends Error {
  constructor(
    message: string,
    readonly helper: string,
    readonly loc: Loc | undefined,
    /** Set when argument N was undefined, i.e. a missing key passed to a strict helper. */
    readonly missingArg?: number,
    readonly hint?: string,
  ) {
    super(message);
  }
}

interface HelperOptions {
  loc?: Loc;
  data?: { root?: unknown };
  hash?: Record<string, unknown>;
}

interface Spec {
  min: number;
  max: number;
  /** Lenient helpers accept undefined (a missing key): default, get, has. */
  lenient?: boolean;
  fn: (args: unknown[], self: unknown, options: HelperOptions) => unknown;
}

/**
 * Handlebars' strict mode checks the last segment of a path only where the path is printed; a path
 * passed to a helper may silently be undefined. Strict helpers close that gap by refusing undefined.
 */
function wrap(name: string, spec: Spec): Handlebars.HelperDelegate {
  return function (this: unknown, ...raw: unknown[]) {
    const options = raw.pop() as HelperOptions;
    const args = raw;
    if (args.length < spec.min || args.length > spec.max) {
      const count = spec.max === Infinity ? `at least ${spec.min}` : spec.min === spec.max ? `${spec.min}` : `${spec.min} to ${spec.max}`;
      throw new HelperError(`${name} takes ${count} argument${spec.max === 1 ? '' : 's'}, got ${args.length}`, name, options.loc);
    }
    if (!spec.lenient) {
      const missing = args.findIndex((a) => a === undefined);
      if (missing >= 0) throw new HelperError(`argument ${missing + 1} of ${name} is undefined`, name, options.loc, missing);
    }
    try {
      return spec.fn(args, this, options);
    } catch (e) {
      if (e instanceof HelperError || e instanceof ValueNotRead) throw e;
      throw new HelperError(`${name}: ${(e as Error).message}`, name, options.loc);
    }
  };
}

function order(name: string, test: (c: number) => boolean): Spec {
  return {
    min: 2,
    max: 2,
    fn: ([a, b]) => {
      const c = compare(a, b);
      if (c === undefined) throw new Error(`cannot compare ${typeName(a)} ${describe(a)} with ${typeName(b)} ${describe(b)}`);
      return test(c);
    },
  };
}

/** Lenient lookup of a dotted path string from the current context, or from the root with `@root.`. */
function lookupPath(path: unknown, self: unknown, options: HelperOptions): { found: boolean; value?: unknown } {
  if (typeof path !== 'string' || path === '') throw new Error(`expects a path string such as "host.vars.port", got ${describe(path)}`);
  let current: unknown = self;
  let parts = path.split('.');
  if (parts[0] === '@root') {
    current = options.data?.root;
    parts = parts.slice(1);
  } else if (parts[0] === 'this') {
    parts = parts.slice(1);
  }
  for (const part of parts) {
    if (BLOCKED_KEYS.has(part)) throw new Error(`access to "${part}" is not allowed`);
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return { found: false };
    current = (current as Record<string, unknown>)[part];
  }
  return { found: current !== undefined, value: current };
}

function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  throw new Error(`expects text, got ${typeName(v)} ${describe(v)}`);
}

const SPECS: Record<string, Spec> = {
  eq: { min: 2, max: 2, fn: ([a, b]) => equals(a, b) },
  ne: { min: 2, max: 2, fn: ([a, b]) => !equals(a, b) },
  lt: order('lt', (c) => c < 0),
  le: order('le', (c) => c <= 0),
  gt: order('gt', (c) => c > 0),
  ge: order('ge', (c) => c >= 0),
  and: { min: 1, max: Infinity, fn: (args) => args.every(truthy) },
  or: { min: 1, max: Infinity, fn: (args) => args.some(truthy) },
  not: { min: 1, max: 1, fn: ([a]) => !truthy(a) },
  default: { min: 2, max: 2, lenient: true, fn: ([v, fallback]) => (v === undefined || v === null ? fallback : v) },
  get: {
    min: 1,
    max: 2,
    lenient: true,
    fn: ([path, fallback], self, options) => {
      const r = lookupPath(path, self, options);
      return r.found && r.value !== null ? r.value : fallback;
    },
  },
  has: { min: 1, max: 1, lenient: true, fn: ([path], self, options) => lookupPath(path, self, options).found },
  json: {
    min: 1,
    max: 2,
    fn: ([v, indent]) => JSON.stringify(v, null, typeof indent === 'number' ? indent : undefined),
  },
  join: {
    min: 1,
    max: 2,
    fn: ([list, sep]) => {
      if (!Array.isArray(list)) throw new Error(`expects a list, got ${typeName(list)} ${describe(list)}`);
      return list.map(text).join(sep === undefined ? ', ' : text(sep));
    },
  },
  upper: { min: 1, max: 1, fn: ([s]) => text(s).toUpperCase() },
  lower: { min: 1, max: 1, fn: ([s]) => text(s).toLowerCase() },
  // Every non-empty line, the first included, gets `n` spaces: {{indent (json x 2) 4}} under a key.
  indent: {
    min: 2,
    max: 2,
    fn: ([s, n]) => {
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`expects a number of spaces, got ${describe(n)}`);
      const pad = ' '.repeat(n);
      return text(s)
        .split('\n')
        .map((line) => (line === '' ? line : pad + line))
        .join('\n');
    },
  },
  // Numbered config keys (pgBackRest's pg2-path ...) from @index: {{add @index 2}}.
  add: {
    min: 2,
    max: 2,
    fn: ([a, b]) => {
      if (typeof a !== 'number' || typeof b !== 'number') throw new Error(`expects two numbers, got ${typeName(a)} ${describe(a)} and ${typeName(b)} ${describe(b)}`);
      return a + b;
    },
  },
  // The directory of a path: files kept beside a configuration file ({{dirname inventory.backup.barman.config}}/barman.d).
  dirname: { min: 1, max: 1, fn: ([v]) => posix.dirname(text(v)) },
  pgconf: { min: 1, max: 1, fn: ([v]) => pgconfValue(v) },
  shquote: { min: 1, max: 1, fn: ([v]) => shquote(text(v)) },
  conninfo: { min: 1, max: 1, fn: ([v]) => conninfoValue(text(v)) },
  // pg_hba.conf address column: an IP literal gets its /32 or /128, a host name stays bare.
  hbaaddr: { min: 1, max: 1, fn: ([v]) => hbaAddress(text(v)) },
};

export const HELPER_NAMES: readonly string[] = [...Object.keys(SPECS), 'if', 'unless', 'each', 'with', 'lookup', 'log'];

/**
 * The built-in block helpers get a path argument without Handlebars' strict check, so a typo in
 * `{{#each postgres.setings}}` would silently render nothing. They now refuse undefined (null
 * still means "nothing to iterate"), and `lookup` refuses a key that is not there.
 */
function strictBuiltins(hb: typeof Handlebars): void {
  const builtin = hb.helpers as Record<string, Handlebars.HelperDelegate>;
  for (const name of ['each', 'with']) {
    const original = builtin[name]!;
    hb.registerHelper(name, function (this: unknown, ...args: unknown[]) {
      const options = args[args.length - 1] as HelperOptions;
      if (args.length < 2) throw new HelperError(`{{#${name}}} needs a value to ${name === 'each' ? 'iterate over' : 'enter'}`, name, options.loc);
      if (args[0] === undefined) throw new HelperError(`argument 1 of ${name} is undefined`, name, options.loc, 0);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    });
  }
  hb.registerHelper(
    'lookup',
    wrap('lookup', {
      min: 2,
      max: 2,
      fn: ([obj, key]) => {
        if (typeof key !== 'string' && typeof key !== 'number') throw new Error(`expects a key, got ${typeName(key)} ${describe(key)}`);
        const k = String(key);
        if (BLOCKED_KEYS.has(k)) throw new Error(`access to "${k}" is not allowed`);
        if (obj === null || typeof obj !== 'object') throw new Error(`cannot read ${describe(key)} of ${typeName(obj)} ${describe(obj)}`);
        if (!Object.hasOwn(obj, k)) {
          const keys = Object.keys(obj);
          const near = didYouMean(k, keys);
          throw new Error(`no key ${describe(key)} in ${describe(obj)}${near === undefined ? '' : `; did you mean "${near}"?`}`);
        }
        return (obj as Record<string, unknown>)[k];
      },
    }),
  );
}

export function registerHelpers(hb: typeof Handlebars): void {
  strictBuiltins(hb);
  for (const [name, spec] of Object.entries(SPECS)) hb.registerHelper(name, wrap(name, spec));
}
