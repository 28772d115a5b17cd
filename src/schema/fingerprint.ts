import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JsonSchema } from '../actions/types.js';
import { buildInventorySchema } from './inventory.js';
import { buildPlaybookSchema, type ActionSchemaSource } from './playbook.js';

// Finding a document's validators without building its schema: a recipe names the schema by a
// fingerprint of the code and arguments it is built from, and of the code that compiles it.

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

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

/**
 * The modules that turn a schema into a generated validator, whatever the schema: the profiles'
 * options and formats, and leanSchema. Stamped with their imports, like a builder; the store
 * (validators.ts) is left out, since it only finds and loads what they made.
 */
const COMPILER_SOURCES = ['profiles', 'lean-schema'];

let ownStamp: string | undefined;
/**
 * This module's own text: the recipes below choose each builder's arguments (hostsOptional), so they
 * shape the schema too. Not its imports: each recipe stamps its own builder's closure, and stamping
 * this module's closure would tie the inventory's fingerprint to the playbook builder's code.
 */
function thisModuleStamp(): string {
  ownStamp ??= sha256(readFileSync(HERE, 'utf8'));
  return ownStamp;
}

/**
 * A document schema named by a cheap fingerprint of what it is built from. Building the playbook
 * schema (every action's input, relaxed for templates) and hashing its 66 KB of JSON costs tens of
 * milliseconds at start-up; the fingerprint hashes the builder's code (sourceStamp), the compiler's
 * code (COMPILER_SOURCES), this module's text and the builder's arguments, a few KB. precompile
 * records each fingerprint in the manifest with the files generated for the schema; a fingerprint
 * the manifest does not know is served by building the schema and looking its files up by full
 * hash, as before.
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
    this.print ??= sha256(
      [this.label, sourceStamp(this.sources), sourceStamp(COMPILER_SOURCES.map(sibling)), thisModuleStamp(), JSON.stringify(this.inputs())].join('\n'),
    );
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
