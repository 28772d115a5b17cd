import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv, Options, ValidateFunction } from 'ajv';
import type { JsonSchema } from '../actions/types.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { buildInventorySchema } from './inventory.js';
import { buildPlaybookSchema, type ActionSchemaSource } from './playbook.js';

/**
 * How a schema is compiled. `document`: playbooks and inventories, every error at once (a user fixes
 * a file in one pass) with the failing schema and data attached, so errors can be explained in the
 * user's terms. `document-lean`: the same keywords and formats, stopping at the first error with
 * nothing attached; it only gives the verdict, and its generated module is a fraction of the size,
 * so a valid document is accepted without loading the full one. `input`: an action's input after
 * rendering, which yields strings, so types are coerced ("5" → 5) and schema defaults filled in.
 */
export type ValidatorProfile = 'document' | 'document-lean' | 'input';

/** The profiles generated for each document schema (playbooks, inventories). */
export const DOCUMENT_PROFILES: ReadonlyArray<ValidatorProfile> = ['document', 'document-lean'];

/** Where validators were found: generated at build time, or compiled by ajv in this process. */
export type ValidatorOrigin = 'precompiled' | 'runtime';

/** Written by `node dist/schema/precompile.js` (part of `npm run build`); only ever in dist/, never committed. */
export const VALIDATORS_DIR = join(PACKAGE_ROOT, 'dist', 'validators');

/** The CommonJS module, beside the validators, that generated code requires for custom formats. */
export const FORMATS_FILE = 'formats.cjs';

/** Lists what was generated and which fingerprint names which files; written last, so its presence means the directory is complete. */
export const MANIFEST_FILE = 'manifest.json';

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

const PROFILE_OPTIONS: Record<ValidatorProfile, Options> = {
  document: DOCUMENT_OPTIONS,
  // Each $ref its own function: with the shared subschemas hoisted (see leanSchema), a subschema used
  // in two places is generated once, and V8 compiles only the functions a document reaches.
  'document-lean': { ...DOCUMENT_OPTIONS, allErrors: false, verbose: false, inlineRefs: false },
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

// Node 20 cannot require ESM, and validateDocument is synchronous: generated validators are CommonJS,
// and ajv itself is only required when something has to be compiled, so a run whose validators were
// all generated at build time never loads ajv's compiler.
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

/** Below this size (JSON text) a subschema is left in place: a function call would cost more than it saves. */
export const HOIST_MIN_CHARS = 1000;

/**
 * The schema the lean profile compiles: the same constraints, with every large subschema of a
 * `properties` map (the root's and each definition's) moved into `definitions` and referenced, one
 * definition per distinct text. The playbook schema holds each action's input twice (steps and
 * handlers): ajv would generate it twice, into two functions of a quarter megabyte each that V8 must
 * compile whole on first call. Subschemas that declare an `$id` stay put, since moving one would
 * change how references inside it resolve.
 */
export function leanSchema(schema: JsonSchema): JsonSchema {
  const out = structuredClone(schema);
  const definitions = ((out.definitions as Record<string, JsonSchema> | undefined) ?? {}) as Record<string, JsonSchema>;
  const hoisted = new Map<string, string>();
  const maps = [out, ...Object.values(definitions)].map((node) => node?.properties).filter(isSchemaMap);
  for (const properties of maps) {
    for (const [key, sub] of Object.entries(properties)) {
      if (!sub || typeof sub !== 'object') continue;
      const text = JSON.stringify(sub);
      if (text.length < HOIST_MIN_CHARS || text.includes('"$id"')) continue;
      let name = hoisted.get(text);
      if (!name) {
        let n = hoisted.size;
        while (`lean-${n}` in definitions) n++;
        name = `lean-${n}`;
        hoisted.set(text, name);
        definitions[name] = sub;
      }
      properties[key] = { $ref: `#/definitions/${name}` };
    }
  }
  if (hoisted.size) out.definitions = definitions;
  return out;
}

function isSchemaMap(value: unknown): value is Record<string, JsonSchema> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

/** The schema as a profile compiles it (the lean profile's is reshaped, with the same meaning). */
export function compiledSchema(profile: ValidatorProfile, schema: JsonSchema): JsonSchema {
  return profile === 'document-lean' ? leanSchema(schema) : schema;
}

/** Compiles with ajv in this process, as pgplay did before validators were generated at build time. */
export function compileAtRuntime(profile: ValidatorProfile, schema: JsonSchema): ValidateFunction {
  // One Ajv per schema: playbook schemas built for different action lists share one $id.
  return newAjv(profile).compile(compiledSchema(profile, schema));
}

// ---- Fingerprints: finding a document's validators without building its schema --------------------

// Static imports and re-exports by relative path; `import type` is erased by tsc, so it cannot change a schema.
const RELATIVE_IMPORT = /(?:^|[\s;])(?:import|export)\s+(?!type\s)(?:[^;'"]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/g;
const DYNAMIC_IMPORT = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

const stamps = new Map<string, string>();

/**
 * Hash of the text of the given modules and of every module they import by relative path, found by
 * reading them. Everything a schema builder computes follows from that code and its arguments, so
 * an unchanged stamp means an unchanged builder. Running from dist/ this reads the compiled .js that
 * precompile read when it wrote the manifest; running from src/ (tests) it reads the .ts sources,
 * which never match a dist manifest, so their schemas are found by the full hash. Paths are taken
 * relative to the module tree, so an installed copy of the package keeps its stamps.
 */
export function sourceStamp(entries: ReadonlyArray<string>): string {
  const key = entries.join('\n');
  let stamp = stamps.get(key);
  if (stamp === undefined) {
    const files = moduleClosure(entries);
    const root = dirname(dirname(entries[0]!));
    const hash = createHash('sha256');
    for (const [file, text] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      hash.update(`${relative(root, file)}\0${text}\0`);
    }
    stamp = hash.digest('hex');
    stamps.set(key, stamp);
  }
  return stamp;
}

/** The modules reachable from `entries` through relative imports, with their text (undefined: missing). */
export function moduleClosure(entries: ReadonlyArray<string>): Map<string, string | undefined> {
  const seen = new Map<string, string | undefined>();
  const pending = [...entries];
  while (pending.length) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // A missing module cannot be run either; recording it keeps the stamp honest.
    }
    seen.set(file, text);
    if (text === undefined) continue;
    for (const pattern of [RELATIVE_IMPORT, DYNAMIC_IMPORT]) {
      for (const match of text.matchAll(pattern)) pending.push(importedFile(file, match[1]!));
    }
  }
  return seen;
}

/** The file an import specifier names; in TypeScript sources './x.js' is './x.ts'. */
function importedFile(from: string, specifier: string): string {
  const target = resolve(dirname(from), specifier);
  return extname(from) === '.ts' && target.endsWith('.js') ? `${target.slice(0, -3)}.ts` : target;
}

const HERE = fileURLToPath(import.meta.url);
/** A module of this directory, in the form this one runs as (.js in dist/, .ts from src/). */
const sibling = (name: string): string => join(dirname(HERE), `${name}${extname(HERE)}`);

let ownStamp: string | undefined;
/**
 * This module's own text: it holds the profiles' options, the formats and leanSchema, which make a
 * generated file what it is. Not its imports: each recipe stamps its own builder's closure.
 */
function thisModuleStamp(): string {
  ownStamp ??= sha256(readFileSync(HERE, 'utf8'));
  return ownStamp;
}

/**
 * A document schema named by a cheap fingerprint of what it is built from. Building the playbook
 * schema (every action's input, relaxed for templates) and hashing its 66 KB of JSON costs tens of
 * milliseconds at start-up; the fingerprint hashes the builder's code (sourceStamp), this module's
 * text and the builder's arguments, a few KB. precompile records each fingerprint in the manifest
 * with the files generated for the schema; a fingerprint the manifest does not know is served by
 * building the schema and looking its files up by full hash, as before.
 */
export class SchemaRecipe {
  private built?: JsonSchema;
  private print?: string;

  constructor(
    readonly label: string,
    private readonly sources: ReadonlyArray<string>,
    private readonly inputs: () => unknown,
    private readonly build: () => JsonSchema,
  ) {}

  get fingerprint(): string {
    this.print ??= sha256(`${this.label}\n${sourceStamp(this.sources)}\n${thisModuleStamp()}\n${JSON.stringify(this.inputs())}`);
    return this.print;
  }

  /** The schema, built on first use. */
  schema(): JsonSchema {
    this.built ??= this.build();
    return this.built;
  }

  /** Whether schema() has been built (tests check that a known fingerprint never builds it). */
  get isBuilt(): boolean {
    return this.built !== undefined;
  }
}

type PlaybookRecipes = { count: number; plain?: SchemaRecipe; included?: SchemaRecipe };
const playbookRecipes = new WeakMap<ReadonlyArray<ActionSchemaSource>, PlaybookRecipes>();

/** The playbook schema for an action list; one recipe per (list, variant) while the list keeps its length. */
export function playbookSchemaRecipe(actions: ReadonlyArray<ActionSchemaSource>, options: { hostsOptional?: boolean } = {}): SchemaRecipe {
  let cached = playbookRecipes.get(actions);
  if (!cached || cached.count !== actions.length) {
    cached = { count: actions.length };
    playbookRecipes.set(actions, cached);
  }
  const hostsOptional = options.hostsOptional ?? false;
  const slot = hostsOptional ? 'included' : 'plain';
  cached[slot] ??= new SchemaRecipe(
    hostsOptional ? 'playbook (included)' : 'playbook',
    [sibling('playbook')],
    () => ({ hostsOptional, actions: actions.map((a) => [a.name, a.summary, a.schema]) }),
    () => buildPlaybookSchema(actions, { hostsOptional }),
  );
  return cached[slot];
}

let inventoryRecipe: SchemaRecipe | undefined;

/** The inventory schema, which depends on nothing but its code. */
export function inventorySchemaRecipe(): SchemaRecipe {
  inventoryRecipe ??= new SchemaRecipe('inventory', [sibling('inventory')], () => null, buildInventorySchema);
  return inventoryRecipe;
}

// ---- The store ---------------------------------------------------------------------------------------

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
