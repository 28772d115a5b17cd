import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import type { JsonSchema } from './json-schema.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { requireExact } from '../core/require-exact.js';
import { BUILD_STAMP, UNSTAMPED } from './build-stamp.js';
import { DocumentSchema } from './documents.js';
import { PROFILE_OPTIONS, compileAtRuntime, type ValidatorProfile } from './profiles.js';

// The store of validators: the modules generated at build time, else ones compiled in this process.
// A document validator (playbook, inventory) is found by name, and only when the manifest carries the
// stamp of the running build (build-stamp.ts): so its large schema need not be built to find it. An
// action input validator is found by a hash of its small schema's text, which is exact on its own.

/** Where validators were found: generated at build time, or compiled by ajv in this process. */
export type ValidatorOrigin = 'precompiled' | 'runtime';

/** Written by `node dist/app/build-validators.js` (part of `npm run build`; see precompile.ts); only ever in dist/, never committed. */
export const VALIDATORS_DIR = join(PACKAGE_ROOT, 'dist', 'validators');

/** The CommonJS module, beside the validators, that generated code requires for custom formats. */
export const FORMATS_FILE = 'formats.cjs';

/** What was generated, and by which build; written last, so its presence means the directory is complete. */
export const MANIFEST_FILE = 'manifest.json';

export interface Manifest {
  /** The package version and the stamp of the build that generated the directory. */
  version: string;
  stamp: string;
  /** Document validators by name (DocumentSchema.name). */
  documents: Record<string, string>;
  /** Every generated module, with what it validates. */
  files: Record<string, string>;
}

// Node 20 cannot require ESM, and validateDocument is synchronous: generated validators are CommonJS.
const require = createRequire(import.meta.url);

/**
 * Name of the generated module for (profile, schema). The hash covers the profile's options and the
 * schema's JSON text, so an input schema or an option changed since the build finds no file, and is
 * compiled.
 */
export function validatorFileName(profile: ValidatorProfile, schema: JsonSchema): string {
  const hash = createHash('sha256').update(`${profile}\n${JSON.stringify(PROFILE_OPTIONS[profile])}\n${JSON.stringify(schema)}`).digest('hex');
  return `${profile}-${hash.slice(0, 32)}.cjs`;
}

type SchemaKey = JsonSchema | DocumentSchema;

/** Validators of one directory of generated modules, each looked up once per (profile, schema). */
export class ValidatorStore {
  private readonly found: Record<ValidatorProfile, WeakMap<SchemaKey, ValidateFunction | null>> = { document: new WeakMap(), input: new WeakMap() };
  private readonly compiled: Record<ValidatorProfile, WeakMap<JsonSchema, ValidateFunction>> = { document: new WeakMap(), input: new WeakMap() };
  private readonly origins = new WeakMap<ValidateFunction, ValidatorOrigin>();
  private manifestRead?: Manifest | null;

  /** `stamp`: the running build's (tests pass the one they generated a directory with). */
  constructor(
    readonly dir: string = VALIDATORS_DIR,
    private readonly stamp: string = BUILD_STAMP,
  ) {}

  /** The generated validator, else one compiled now (and kept). */
  get(profile: ValidatorProfile, key: SchemaKey): ValidateFunction {
    const found = this.find(profile, key);
    if (found) return found;
    const schema = key instanceof DocumentSchema ? key.schema() : key;
    let validate = this.compiled[profile].get(schema);
    if (!validate) {
      validate = compileAtRuntime(profile, schema);
      this.origins.set(validate, 'runtime');
      this.compiled[profile].set(schema, validate);
    }
    return validate;
  }

  /** The generated validator, or undefined when this build generated none for the schema. */
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

  /** Whether the directory was generated by the running build (never for unstamped code: src/, a plain tsc). */
  get trusted(): boolean {
    return this.stamp !== UNSTAMPED && this.manifest()?.stamp === this.stamp;
  }

  /** Whether the build generated a validator for (profile, key), without loading it. */
  generated(profile: ValidatorProfile, key: SchemaKey): boolean {
    if (this.found[profile].get(key)) return true;
    const name = this.fileOf(profile, key);
    return name !== undefined && existsSync(join(this.dir, name));
  }

  private fileOf(profile: ValidatorProfile, key: SchemaKey): string | undefined {
    if (key instanceof DocumentSchema) return key.name && this.trusted ? this.manifest()?.documents?.[key.name] : undefined;
    return validatorFileName(profile, key);
  }

  private locate(profile: ValidatorProfile, key: SchemaKey): ValidateFunction | undefined {
    const name = this.fileOf(profile, key);
    return name ? this.load(name) : undefined;
  }

  private load(name: string): ValidateFunction | undefined {
    const file = join(this.dir, name);
    if (!existsSync(file)) return undefined;
    const loaded = requireExact(file, undefined, () => require(file)) as ValidateFunction | { default: ValidateFunction };
    const validate = typeof loaded === 'function' ? loaded : loaded.default;
    this.origins.set(validate, 'precompiled');
    return validate;
  }
}

const packageStore = new ValidatorStore();

/** The validator for (profile, schema): generated by this build when dist/validators has it, else compiled. */
export function validatorFor(profile: ValidatorProfile, schema: SchemaKey): ValidateFunction {
  return packageStore.get(profile, schema);
}

/** Whether validatorFor() loaded `validate` from dist/validators or compiled it. */
export function validatorOrigin(validate: ValidateFunction): ValidatorOrigin | undefined {
  return packageStore.origin(validate);
}

/** Whether this build generated the validator for (profile, schema), without loading it: then the schema need not be built. */
export function hasGeneratedValidator(profile: ValidatorProfile, schema: SchemaKey): boolean {
  return packageStore.generated(profile, schema);
}
