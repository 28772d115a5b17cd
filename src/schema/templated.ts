import type { JsonSchema } from './json-schema.js';

/**
 * The alternative that lets a Handlebars template ("{{params.type}}") stand for a value that is only
 * known after rendering. It is recognised by shape when validation errors are collapsed, so keep it
 * exactly this: a string that contains "{{".
 */
export const TEMPLATE_SCHEMA: Readonly<JsonSchema> = Object.freeze({
  type: 'string',
  pattern: '\\{\\{',
  description: 'A Handlebars template, rendered before the step runs',
});

export function isTemplateSchema(schema: unknown): boolean {
  if (!schema || typeof schema !== 'object') return false;
  const s = schema as JsonSchema;
  return s.type === 'string' && s.pattern === TEMPLATE_SCHEMA.pattern;
}

export function isTemplated(value: unknown): boolean {
  return typeof value === 'string' && value.includes('{{');
}

const SCALAR_TYPES = new Set(['string', 'integer', 'number', 'boolean', 'null']);
const SUBSCHEMA_MAPS = ['properties', 'patternProperties', 'definitions', '$defs'] as const;
// `if` and `not` are left as written: relaxing a condition would change which branch applies (a
// templated `state` must not count as `state: link`), and relaxing a `not` would forbid more.
const SUBSCHEMA_SINGLES = ['additionalProperties', 'items', 'additionalItems', 'contains', 'then', 'else'] as const;
const SUBSCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf'] as const;

/**
 * Returns a copy of `schema` in which every place that constrains a scalar more tightly than "any
 * string" (a non-string type, enum, const, pattern) also accepts a template string. Containers
 * (mappings, lists) are never replaced by a template: Handlebars only ever renders strings, so only
 * their members are relaxed.
 */
export function allowTemplates(schema: JsonSchema): JsonSchema {
  return relax(schema) as JsonSchema;
}

function relax(node: unknown): unknown {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return node;
  const schema = node as JsonSchema;
  if (isTemplateSchema(schema)) return schema;
  if (isScalarOnly(schema)) {
    return constrainsStrings(schema) ? { anyOf: [schema, { ...TEMPLATE_SCHEMA }] } : schema;
  }
  const out: JsonSchema = { ...schema };
  for (const key of SUBSCHEMA_MAPS) {
    const map = schema[key];
    if (map && typeof map === 'object') {
      out[key] = Object.fromEntries(Object.entries(map as JsonSchema).map(([k, v]) => [k, relax(v)]));
    }
  }
  for (const key of SUBSCHEMA_SINGLES) {
    if (key in schema) out[key] = relax(schema[key]);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = schema[key];
    if (Array.isArray(list)) out[key] = list.map(relax);
  }
  return out;
}

function typesOf(schema: JsonSchema): string[] | undefined {
  const t = schema.type;
  if (typeof t === 'string') return [t];
  if (Array.isArray(t)) return t as string[];
  return undefined;
}

/** True when the schema can only ever match scalars, so the whole of it may be swapped for a template. */
function isScalarOnly(schema: JsonSchema): boolean {
  if ('$ref' in schema) return false;
  const types = typesOf(schema);
  if (types) return types.every((t) => SCALAR_TYPES.has(t));
  if (Array.isArray(schema.enum)) return (schema.enum as unknown[]).every((v) => v === null || typeof v !== 'object');
  if ('const' in schema) return schema.const === null || typeof schema.const !== 'object';
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = schema[key];
    if (Array.isArray(list) && list.length) {
      return list.every((s) => s && typeof s === 'object' && isScalarOnly(s as JsonSchema));
    }
  }
  return false;
}

/** True when some template string ("{{x}}") would be rejected by the schema as written. */
function constrainsStrings(schema: JsonSchema): boolean {
  if ('enum' in schema || 'const' in schema || 'pattern' in schema || 'format' in schema) return true;
  const types = typesOf(schema);
  if (types) return !types.includes('string');
  for (const key of ['anyOf', 'oneOf'] as const) {
    const list = schema[key];
    if (Array.isArray(list)) return list.every((s) => constrainsStrings(s as JsonSchema));
  }
  return false;
}
