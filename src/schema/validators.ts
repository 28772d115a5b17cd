import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import type { JsonSchema } from '../actions/types.js';
import { PACKAGE_ROOT } from '../core/paths.js';

/**
 * How a schema is compiled. `document`: playbooks and inventories, every error at once (a user fixes
 * a file in one pass) with the failing schema and data attached, so errors can be explained in the
 * user's terms. `input`: an action's input after rendering, which yields strings, so types are
 * coerced ("5" → 5) and schema defaults filled in.
 */
export type ValidatorProfile = 'document' | 'input';

/** Where validators were found: generated at build time, or compiled by ajv in this process. */
export type ValidatorOrigin = 'precompiled' | 'runtime';

/** Written by `node dist/schema/precompile.js` (part of `npm run build`); only ever in dist/, never committed. */
export const VALIDATORS_DIR = join(PACKAGE_ROOT, 'dist', 'validators');

/** The CommonJS module, beside the validators, that generated code requires for custom formats. */
export const FORMATS_FILE = 'formats.cjs';

const PROFILE_OPTIONS: Record<ValidatorProfile, Options> = {
  document: {
    allErrors: true,
    verbose: true,
    // Action schemas come from many hands; a stray annotation must not stop pgplay from starting.
    // The unit tests compile pgplay's own schemas with strict on.
    strict: false,
    // `oneOf: [{required: [a]}, {required: [b]}]` is the standard way to say "exactly one of a, b".
    strictRequired: false,
    allowUnionTypes: true,
  },
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
 * Custom formats of the document profile. precompile.ts writes them into formats.cjs from their
 * source text, so each must be self-contained: no reference to anything outside its own body.
 */
export const DOCUMENT_FORMATS: Readonly<Record<string, (text: string) => boolean>> = { regex: isRegex };

// Node 20 cannot require ESM, and validateDocument is synchronous: generated validators are CommonJS,
// and ajv itself is only required when something has to be compiled, so a run whose validators were
// all generated at build time never loads ajv's compiler.
const require = createRequire(import.meta.url);

/** A fresh Ajv with the profile's options; `extra` overrides them (precompile adds `code`). */
export function newAjv(profile: ValidatorProfile, extra: Options = {}): Ajv {
  const { Ajv: AjvClass } = require('ajv') as typeof import('ajv');
  const ajv = new AjvClass({ ...PROFILE_OPTIONS[profile], ...extra });
  if (profile === 'document') {
    ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' });
    for (const [name, check] of Object.entries(DOCUMENT_FORMATS)) ajv.addFormat(name, check);
  }
  return ajv;
}

/** Ajv as pgplay validates documents with; `strict` is for tests that check pgplay's own schemas. */
export function createAjv(options: { strict?: boolean } = {}): Ajv {
  return newAjv('document', { strict: options.strict ?? false });
}

/**
 * Name of the generated module for (profile, schema). The hash covers the profile's options and the
 * schema's JSON text, so a schema or an option changed since the build finds no file, and is compiled.
 */
export function validatorFileName(profile: ValidatorProfile, schema: JsonSchema): string {
  const hash = createHash('sha256')
    .update(`${profile}\n${JSON.stringify(PROFILE_OPTIONS[profile])}\n${JSON.stringify(schema)}`)
    .digest('hex')
    .slice(0, 32);
  return `${profile}-${hash}.cjs`;
}

/** Compiles with ajv in this process, as pgplay did before validators were generated at build time. */
export function compileAtRuntime(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction {
  // One Ajv per schema: playbook schemas built for different action lists share one $id.
  return newAjv(profile).compile(schema);
}

/** Validators of one directory of generated modules, each looked up once per (profile, schema object). */
export class ValidatorStore {
  private readonly cache: Record<ValidatorProfile, WeakMap<JsonSchema, ValidateFunction>> = {
    document: new WeakMap(),
    input: new WeakMap(),
  };
  private readonly origins = new WeakMap<ValidateFunction, ValidatorOrigin>();

  constructor(readonly dir: string = VALIDATORS_DIR) {}

  get(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction {
    let validate = this.cache[profile].get(schema);
    if (!validate) {
      validate = this.load(profile, schema);
      if (validate) {
        this.origins.set(validate, 'precompiled');
      } else {
        validate = compileAtRuntime(profile, schema);
        this.origins.set(validate, 'runtime');
      }
      this.cache[profile].set(schema, validate);
    }
    return validate;
  }

  /** How `validate`, returned by get(), came to be. */
  origin(validate: ValidateFunction): ValidatorOrigin | undefined {
    return this.origins.get(validate);
  }

  private load(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction | undefined {
    const file = join(this.dir, validatorFileName(profile, schema));
    // Custom action lists (tests, embedders) and schemas changed since the build have no module.
    if (!existsSync(file)) return undefined;
    const loaded = require(file) as ValidateFunction | { default: ValidateFunction };
    return typeof loaded === 'function' ? loaded : loaded.default;
  }
}

const packageStore = new ValidatorStore();

/** The validator for (profile, schema): generated at build time when dist/validators has it, else compiled. */
export function validatorFor(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction {
  return packageStore.get(profile, schema);
}

/** Whether validatorFor() loaded `validate` from dist/validators or compiled it. */
export function validatorOrigin(validate: ValidateFunction): ValidatorOrigin | undefined {
  return packageStore.origin(validate);
}
