import type { JsonSchema } from './json-schema.js';
import type { DocPath } from '../model/document.js';
import { isTemplateSchema } from './templated.js';

/** The "expected ..." text for a schema, in words a DBA reads at 3 a.m. rather than JSON Schema terms. */
export function describeExpected(schema: JsonSchema): string {
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  if (Array.isArray(schema.enum)) return `one of ${(schema.enum as unknown[]).map(plain).join(', ')}`;
  if ('const' in schema) return plain(schema.const);
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = schema[key];
    if (Array.isArray(list)) {
      const real = (list as JsonSchema[]).filter((s) => !isTemplateSchema(s));
      return (real.length ? real : (list as JsonSchema[])).map(describeExpected).join(' or ');
    }
  }
  const types = typeof schema.type === 'string' ? [schema.type] : Array.isArray(schema.type) ? (schema.type as string[]) : [];
  if (types.length === 0) return 'a valid value';
  return types.map((t) => describeType(t, schema)).join(' or ');
}

function describeType(type: string, s: JsonSchema): string {
  switch (type) {
    case 'integer':
    case 'number': {
      const noun = type === 'integer' ? 'an integer' : 'a number';
      const min = typeof s.minimum === 'number' ? s.minimum : undefined;
      const max = typeof s.maximum === 'number' ? s.maximum : undefined;
      if (min !== undefined && max !== undefined) return `${noun} from ${min} to ${max}`;
      if (min !== undefined) return min === 0 ? `${noun} >= 0` : `${noun} >= ${min}`;
      if (max !== undefined) return `${noun} <= ${max}`;
      return noun;
    }
    case 'string':
      if (typeof s.pattern === 'string') return `a string matching /${s.pattern}/`;
      if (typeof s.minLength === 'number' && s.minLength > 0) return 'a non-empty string';
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping (key: value)';
    case 'array': {
      const items = s.items as JsonSchema | undefined;
      if (items && typeof items === 'object' && !Array.isArray(items) && typeof items.type === 'string') {
        return `a list of ${pluralOf(items.type)}`;
      }
      return 'a list';
    }
    case 'null':
      return 'nothing (null)';
    default:
      return type;
  }
}

function pluralOf(type: string): string {
  return { string: 'strings', integer: 'integers', number: 'numbers', boolean: 'booleans', object: 'mappings', array: 'lists' }[type] ?? type;
}

function plain(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A value as it appears in a message: strings quoted and shortened, containers named by kind. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') {
    const short = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return JSON.stringify(short);
  }
  if (Array.isArray(value)) return '(a list)';
  if (value && typeof value === 'object') return '(a mapping)';
  return String(value);
}

/** `"port"`, `"notify[0]"`, or "the document" for the top level. */
export function labelOf(path: DocPath): string {
  if (path.length === 0) return 'the document';
  const last = path[path.length - 1]!;
  if (typeof last === 'number') {
    const parent = path[path.length - 2];
    return parent === undefined ? `"[${last}]"` : `"${parent}[${last}]"`;
  }
  return `"${last}"`;
}

/** The closest candidate to a misspelt name, when it is close enough to be a likely typo. */
export function didYouMean(word: string, candidates: ReadonlyArray<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(Math.max(word.length, 2) / 3));
  return best !== undefined && bestDistance <= limit ? best : undefined;
}

/** Damerau-Levenshtein (optimal string alignment): a swapped pair of letters counts as one typo. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
