import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { JsonSchema } from '../actions/types.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { SchemaRecipe } from './fingerprint.js';
import { PROFILE_OPTIONS, compileAtRuntime, type ValidatorProfile } from './profiles.js';

// The store of validators: the modules generated at build time (found by file name or by a recipe's
// fingerprint), else ones compiled in this process. What a validator is made of: profiles.ts and
// lean-schema.ts; how a schema is named without building it: fingerprint.ts.

/** Where validators were found: generated at build time, or compiled by ajv in this process. */
export type ValidatorOrigin = 'precompiled' | 'runtime';

/** Written by `node dist/schema/precompile.js` (part of `npm run build`); only ever in dist/, never committed. */
export const VALIDATORS_DIR = join(PACKAGE_ROOT, 'dist', 'validators');

/** The CommonJS module, beside the validators, that generated code requires for custom formats. */
export const FORMATS_FILE = 'formats.cjs';

/** Lists what was generated and which fingerprint names which files; written last, so its presence means the directory is complete. */
export const MANIFEST_FILE = 'manifest.json';

// Node 20 cannot require ESM, and validateDocument is synchronous: generated validators are CommonJS.
const require = createRequire(import.meta.url);

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * Name of the generated module for (profile, schema). The hash covers the profile's options and the
 * schema's JSON text, so a schema or an option changed since the build finds no file, and is compiled.
 * (Not the formats' code: its text differs between tsc's output and the tests' transform of src/.)
 */
export function validatorFileName(profile: ValidatorProfile, schema: JsonSchema): string {
  const hash = sha256(`${profile}\n${JSON.stringify(PROFILE_OPTIONS[profile])}\n${JSON.stringify(schema)}`);
  return `${profile}-${hash.slice(0, 32)}.cjs`;
}

/** Hash of a schema's JSON text, recorded in the manifest beside each fingerprint. */
export function schemaHash(schema: JsonSchema): string {
  return sha256(JSON.stringify(schema));
}

/** One document schema in the manifest: its fingerprint's files per profile, and the hash of its JSON text. */
export interface ManifestSchema {
  label: string;
  schema: string;
  files: Partial<Record<ValidatorProfile, string>>;
}

export interface Manifest {
  /** Every generated module, with what it validates. */
  files: Record<string, string>;
  /** Document schemas by fingerprint. */
  fingerprints: Record<string, ManifestSchema>;
}

type SchemaKey = JsonSchema | SchemaRecipe;

/** Validators of one directory of generated modules, each looked up once per (profile, schema or recipe). */
export class ValidatorStore {
  private readonly found: Record<ValidatorProfile, WeakMap<SchemaKey, ValidateFunction | null>> = {
    document: new WeakMap(),
    'document-lean': new WeakMap(),
    input: new WeakMap(),
  };
  private readonly compiled: Record<ValidatorProfile, WeakMap<JsonSchema, ValidateFunction>> = {
    document: new WeakMap(),
    'document-lean': new WeakMap(),
    input: new WeakMap(),
  };
  private readonly origins = new WeakMap<ValidateFunction, ValidatorOrigin>();
  private manifestRead?: Manifest | null;

  constructor(readonly dir: string = VALIDATORS_DIR) {}

  /** The generated validator, else one compiled now (and kept). */
  get(profile: ValidatorProfile, key: SchemaKey): ValidateFunction {
    const found = this.find(profile, key);
    if (found) return found;
    const schema = key instanceof SchemaRecipe ? key.schema() : key;
    let validate = this.compiled[profile].get(schema);
    if (!validate) {
      validate = compileAtRuntime(profile, schema);
      this.origins.set(validate, 'runtime');
      this.compiled[profile].set(schema, validate);
    }
    return validate;
  }

  /** The generated validator, or undefined when the build made none for this schema. */
  find(profile: ValidatorProfile, key: SchemaKey): ValidateFunction | undefined {
    let validate = this.found[profile].get(key);
    if (validate === undefined) {
      validate = this.locate(profile, key) ?? null;
      this.found[profile].set(key, validate);
    }
    return validate ?? undefined;
  }

  /** How `validate`, returned by get() or find(), came to be. */
  origin(validate: ValidateFunction): ValidatorOrigin | undefined {
    return this.origins.get(validate);
  }

  /** The manifest, read once; undefined when the directory holds none (no build, or a build in progress). */
  manifest(): Manifest | undefined {
    if (this.manifestRead === undefined) {
      try {
        this.manifestRead = JSON.parse(readFileSync(join(this.dir, MANIFEST_FILE), 'utf8')) as Manifest;
      } catch {
        this.manifestRead = null;
      }
    }
    return this.manifestRead ?? undefined;
  }

  private locate(profile: ValidatorProfile, key: SchemaKey): ValidateFunction | undefined {
    if (key instanceof SchemaRecipe) {
      const name = this.manifest()?.fingerprints?.[key.fingerprint]?.files[profile];
      if (name) return this.load(name);
      // An unknown fingerprint: a custom action list, or the builder's code changed since the build.
      return this.find(profile, key.schema());
    }
    // Custom action lists (tests, embedders) and schemas changed since the build have no module.
    return this.load(validatorFileName(profile, key));
  }

  private load(name: string): ValidateFunction | undefined {
    const file = join(this.dir, name);
    if (!existsSync(file)) return undefined;
    const loaded = require(file) as ValidateFunction | { default: ValidateFunction };
    const validate = typeof loaded === 'function' ? loaded : loaded.default;
    this.origins.set(validate, 'precompiled');
    return validate;
  }
}

const packageStore = new ValidatorStore();

/** The validator for (profile, schema): generated at build time when dist/validators has it, else compiled. */
export function validatorFor(profile: ValidatorProfile, schema: SchemaKey): ValidateFunction {
  return packageStore.get(profile, schema);
}

/** The validator generated at build time for (profile, schema), if dist/validators has it; never compiles. */
export function precompiledValidator(profile: ValidatorProfile, schema: SchemaKey): ValidateFunction | undefined {
  return packageStore.find(profile, schema);
}

/** Whether validatorFor() loaded `validate` from dist/validators or compiled it. */
export function validatorOrigin(validate: ValidateFunction): ValidatorOrigin | undefined {
  return packageStore.origin(validate);
}
