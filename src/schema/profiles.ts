import { createRequire } from 'node:module';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import type { JsonSchema } from './json-schema.js';

/**
 * How a schema is compiled. `document`: playbooks and inventories, every error at once (a user fixes
 * a file in one pass) with the failing schema and data attached, so errors can be explained in the
 * user's terms. `input`: an action's input after rendering, which yields strings, so types are
 * coerced ("5" → 5) and schema defaults filled in.
 */
export type ValidatorProfile = 'document' | 'input';

const DOCUMENT_OPTIONS: Options = {
  allErrors: true,
  verbose: true,
  // Action schemas come from many hands; a stray annotation must not stop pgplay from starting.
  // The unit tests compile pgplay's own schemas with strict on.
  strict: false,
  // `oneOf: [{required: [a]}, {required: [b]}]` is the standard way to say "exactly one of a, b".
  strictRequired: false,
  allowUnionTypes: true,
};

/** Ajv's options per profile; the generated modules' names hash them (validators.ts). */
export const PROFILE_OPTIONS: Readonly<Record<ValidatorProfile, Options>> = {
  document: DOCUMENT_OPTIONS,
  input: { allErrors: true, coerceTypes: true, useDefaults: true, strict: false },
};

function isRegex(text: string): boolean {
  try {
    new RegExp(text, 'u');
    return true;
  } catch {
    return false;
  }
}

/**
 * Custom formats of the document profiles. precompile.ts writes them into formats.cjs from their
 * source text, so each must be self-contained: no reference to anything outside its own body.
 */
export const DOCUMENT_FORMATS: Readonly<Record<string, (text: string) => boolean>> = { regex: isRegex };

// Node 20 cannot require ESM, and validateDocument is synchronous: ajv itself is only required when
// something has to be compiled, so a run whose validators were all generated at build time never
// loads ajv's compiler.
const require = createRequire(import.meta.url);

/** A fresh Ajv with the profile's options; `extra` overrides them (precompile adds `code`). */
export function newAjv(profile: ValidatorProfile, extra: Options = {}): Ajv {
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass({ ...PROFILE_OPTIONS[profile], ...extra });
  if (profile !== 'input') {
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    for (const [name, check] of Object.entries(DOCUMENT_FORMATS)) ajv.addFormat(name, check);
  }
  return ajv;
}

/** Ajv as pgplay validates documents with; `strict` is for tests that check pgplay's own schemas. */
export function createAjv(options: { strict?: boolean } = {}): Ajv {
  return newAjv('document', { strict: options.strict ?? false });
}

/** Compiles with ajv in this process, as pgplay did before validators were generated at build time. */
export function compileAtRuntime(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction {
  // One Ajv per schema: playbook schemas built for different action lists share one $id.
  return newAjv(profile).compile(schema);
}
