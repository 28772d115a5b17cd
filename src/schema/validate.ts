import type { ErrorObject } from 'ajv';
import type { JsonSchema } from './json-schema.js';
import { PgplayError } from '../core/errors.js';
import type { DocPath, LoadedDocument } from '../model/document.js';
import { sortErrors } from '../core/sort-errors.js';
import { describeExpected, didYouMean, formatValue, labelOf } from './describe.js';
import { isTemplateSchema } from './templated.js';
import type { DocumentSchema } from './documents.js';
import { validatorFor } from './validators.js';

export { createAjv } from './profiles.js';

/** Validates a loaded document; returns every violation as a SCHEMA error with its position, sorted. */
export function validateDocument(doc: LoadedDocument, schema: JsonSchema | DocumentSchema): PgplayError[] {
  const validate = validatorFor('document', schema);
  return validate(doc.data) ? [] : explainErrors(doc, validate.errors ?? []);
}

export function explainErrors(doc: LoadedDocument, errors: ErrorObject[]): PgplayError[] {
  const mapper = new ErrorMapper(doc, errors);
  const out = new Map<string, PgplayError>();
  for (const e of mapper.explain()) {
    const p = e.position!;
    out.set(`${p.line}:${p.col}:${e.message}`, e);
  }
  return sortErrors([...out.values()]);
}

const COMBINATORS = new Set(['anyOf', 'oneOf']);
/** Failures that say "this value is not of the kind expected here", as opposed to "a kind that fits, but wrong inside". */
const SHALLOW = new Set([
  'type',
  'enum',
  'const',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'multipleOf',
]);

class ErrorMapper {
  constructor(
    private readonly doc: LoadedDocument,
    private readonly errors: ErrorObject[],
  ) {}

  explain(): PgplayError[] {
    return this.resolve(this.topLevel(this.errors));
  }

  /** Errors not produced inside some other combinator error of the list. */
  private topLevel(list: ErrorObject[]): ErrorObject[] {
    const combinators = list.filter((e) => COMBINATORS.has(e.keyword));
    return list.filter((e) => !combinators.some((c) => c !== e && this.isInside(e, c)));
  }

  private isInside(e: ErrorObject, c: ErrorObject): boolean {
    return (
      e.schemaPath.startsWith(c.schemaPath + '/') &&
      (e.instancePath === c.instancePath || e.instancePath.startsWith(c.instancePath + '/'))
    );
  }

  private resolve(list: ErrorObject[]): PgplayError[] {
    return list.flatMap((e) => (COMBINATORS.has(e.keyword) ? this.combinator(e) : this.single(e)));
  }

  /**
   * One anyOf/oneOf failure. Template alternatives are dropped (a non-template string was given, so
   * the real schema is what the user meant). If exactly one alternative matched the kind of value,
   * its inner errors are the useful ones; otherwise one error says what was expected.
   */
  private combinator(c: ErrorObject): PgplayError[] {
    const branches = Array.isArray(c.schema) ? (c.schema as JsonSchema[]) : [];
    const inside = this.errors.filter((e) => e !== c && this.isInside(e, c));
    const byBranch = new Map<number, ErrorObject[]>();
    for (const e of inside) {
      const index = Number(e.schemaPath.slice(c.schemaPath.length + 1).split('/')[0]);
      if (!Number.isInteger(index)) continue;
      byBranch.set(index, [...(byBranch.get(index) ?? []), e]);
    }
    const alternatives = this.alternativeKeys(c, branches);
    if (alternatives) return alternatives;
    let candidates = branches.map((_, i) => i).filter((i) => !isTemplateSchema(branches[i]));
    if (candidates.length === 0) candidates = branches.map((_, i) => i);
    // oneOf can fail because several branches matched: then no branch has errors.
    if (candidates.every((i) => !byBranch.get(i)?.length)) return [this.collapsed(c, branches, candidates)];
    if (candidates.length === 1) return this.resolve(this.topLevel(byBranch.get(candidates[0]!) ?? []));

    const fitting = candidates.filter((i) => !this.isShallow(byBranch.get(i) ?? [], c.instancePath));
    const parent = (c.parentSchema ?? {}) as JsonSchema;
    if (fitting.length === 1 || (fitting.length > 1 && typeof parent.errorMessage !== 'string')) {
      const best = fitting.reduce((a, b) => ((byBranch.get(b)?.length ?? 0) < (byBranch.get(a)?.length ?? 0) ? b : a));
      return this.resolve(this.topLevel(byBranch.get(best) ?? []));
    }
    return [this.collapsed(c, branches, candidates)];
  }

  /**
   * `oneOf: [{required: [argv]}, {required: [shell]}]` means "exactly one of these keys": say so in
   * those words instead of reporting one missing key per alternative.
   */
  private alternativeKeys(c: ErrorObject, branches: JsonSchema[]): PgplayError[] | undefined {
    const requiredOnly = branches.length > 1 && branches.every((b) => Object.keys(b).every((k) => k === 'required' || k === 'description'));
    const value = c.data;
    if (!requiredOnly || !value || typeof value !== 'object' || Array.isArray(value)) return undefined;
    const keys = [...new Set(branches.flatMap((b) => (Array.isArray(b.required) ? (b.required as string[]) : [])))];
    const present = Object.keys(value).filter((k) => keys.includes(k));
    const path = this.pathOf(c.instancePath);
    const label = labelOf(path);
    if (present.length === 0) {
      return [this.error(path, 'value', `${label} needs one of ${keys.join(', ')}`, { expected: `exactly one of ${keys.join(', ')}` })];
    }
    if (c.keyword === 'oneOf' && present.length > 1) {
      return [
        this.error([...path, present[1]!], 'key', `${label} takes only one of ${keys.join(', ')}, found ${present.join(', ')}`, {
          expected: `exactly one of ${keys.join(', ')}`,
        }),
      ];
    }
    return undefined;
  }

  private isShallow(list: ErrorObject[], at: string): boolean {
    return list.length > 0 && list.every((e) => e.instancePath === at && (SHALLOW.has(e.keyword) || COMBINATORS.has(e.keyword)));
  }

  private collapsed(c: ErrorObject, branches: JsonSchema[], candidates: number[]): PgplayError {
    const parent = (c.parentSchema ?? {}) as JsonSchema;
    const expected =
      typeof parent.errorMessage === 'string'
        ? parent.errorMessage
        : candidates.map((i) => describeExpected(branches[i]!)).join(' or ');
    return this.valueError(c, { ...parent, errorMessage: expected });
  }

  private single(e: ErrorObject): PgplayError[] {
    const path = this.pathOf(e.instancePath);
    const parent = (e.parentSchema ?? {}) as JsonSchema;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const allowed = Object.keys((parent.properties as JsonSchema | undefined) ?? {});
        const guess = didYouMean(key, allowed);
        return [
          this.error([...path, key], 'key', `unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''}`, {
            expected: allowed.length && allowed.length <= 15 ? `one of ${allowed.join(', ')}` : undefined,
          }),
        ];
      }
      case 'required': {
        const key = String(params.missingProperty);
        return [this.error(path, 'value', `missing required key "${key}"`)];
      }
      case 'propertyNames':
      case 'if':
        // Both are summaries of other errors in the list that carry the details.
        return [];
      case 'minProperties':
        return [this.error(path, 'value', `${labelOf(path)} must not be empty`)];
      case 'minItems':
        return [
          this.error(
            path,
            'value',
            params.limit === 1 ? `${labelOf(path)} must not be an empty list` : `${labelOf(path)} needs at least ${params.limit} items`,
          ),
        ];
      case 'minLength':
        if (params.limit === 1) return [this.error(path, 'value', `${labelOf(path)} must not be empty`)];
        return [this.valueError(e, parent)];
      default:
        if (SHALLOW.has(e.keyword)) return [this.valueError(e, parent)];
        return [this.error(path, 'value', `${labelOf(path)} ${e.message ?? 'is invalid'}`)];
    }
  }

  /** "invalid value X for "key"" at the value, or at the key when the bad thing is a key name. */
  private valueError(e: ErrorObject, schema: JsonSchema): PgplayError {
    const path = this.pathOf(e.instancePath);
    const propertyName = (e as ErrorObject & { propertyName?: string }).propertyName;
    if (propertyName !== undefined) {
      return this.error([...path, propertyName], 'key', `invalid name "${propertyName}"`, {
        expected: describeExpected(schema),
      });
    }
    const value = e.data;
    const label = labelOf(path);
    let message: string;
    if (schema.writeOnly === true || isWriteOnlySecret(schema)) {
      message = typeof value === 'string' ? `${label} must not be written in plain text` : `invalid value for ${label}`;
    } else if (value === null) {
      message = `${label} has no value`;
    } else {
      message = `invalid value ${formatValue(value)} for ${label}`;
    }
    const written = sourceToken(this.doc.text, this.doc.position(path));
    return this.error(path, 'value', message, { expected: describeExpected(schema), hint: quoteHint(value, written, schema) });
  }

  private error(
    path: DocPath,
    part: 'key' | 'value',
    message: string,
    extra: { expected?: string; hint?: string } = {},
  ): PgplayError {
    return new PgplayError({
      code: 'SCHEMA',
      message,
      expected: extra.expected,
      hint: extra.hint,
      position: this.doc.position(path, part),
      ...this.context(path),
    });
  }

  /** Names the step or host an error belongs to, so the message reads in the user's terms. */
  private context(path: DocPath): { step?: string; host?: string } {
    const data = this.doc.data as Record<string, unknown> | undefined;
    if (path[0] === 'steps' && typeof path[1] === 'number') {
      const step = (data?.steps as unknown[] | undefined)?.[path[1]] as Record<string, unknown> | undefined;
      return { step: typeof step?.id === 'string' ? step.id : `#${path[1] + 1}` };
    }
    // Only inventories have a top-level `hosts` mapping.
    if (path[0] === 'hosts' && typeof path[1] === 'string') return { host: path[1] };
    return {};
  }

  /** JSON pointer to document path; numeric segments stay numbers only where the data is a list. */
  private pathOf(pointer: string): DocPath {
    if (!pointer) return [];
    const out: Array<string | number> = [];
    let node: unknown = this.doc.data;
    for (const raw of pointer.slice(1).split('/')) {
      const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (Array.isArray(node)) {
        const i = Number(seg);
        out.push(i);
        node = node[i];
      } else {
        out.push(seg);
        node = node && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
      }
    }
    return out;
  }
}

/** YAML reads `mode: 0600` or `version: 15.4` as numbers; when a string was wanted, say how to get one. */
function quoteHint(value: unknown, written: string, schema: JsonSchema): string | undefined {
  if (typeof value !== 'number' && typeof value !== 'boolean') return undefined;
  const branches = [schema, ...((schema.anyOf as JsonSchema[] | undefined) ?? [])];
  const wantsString = branches.some((b) => b.type === 'string' && !isTemplateSchema(b));
  const acceptsValue = branches.some((b) => b.type === typeof value || (b.type === 'integer' && typeof value === 'number'));
  return wantsString && !acceptsValue ? `quote it to keep it a string: "${written || String(value)}"` : undefined;
}

/** The plain scalar as the user typed it (YAML turns `0600` into 600). */
function sourceToken(text: string, at: { line: number; col: number }): string {
  const line = text.split(/\r?\n/)[at.line - 1] ?? '';
  return /^[^\s,\]}#]+/.exec(line.slice(at.col - 1))?.[0] ?? '';
}

function isWriteOnlySecret(schema: JsonSchema): boolean {
  const branches = schema.anyOf;
  return Array.isArray(branches) && branches.some((b) => (b as JsonSchema).writeOnly === true);
}
