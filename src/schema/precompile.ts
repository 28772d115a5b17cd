import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { JsonSchema } from '../actions/types.js';
import { actions } from '../actions/registry.js';
import { inventorySchemaRecipe, playbookSchemaRecipe, type SchemaRecipe } from './fingerprint.js';
import { compiledSchema } from './lean-schema.js';
import type { ActionSchemaSource } from './playbook.js';
import { DOCUMENT_FORMATS, DOCUMENT_PROFILES, newAjv, type ValidatorProfile } from './profiles.js';
import { FORMATS_FILE, MANIFEST_FILE, VALIDATORS_DIR, schemaHash, validatorFileName, type Manifest } from './validators.js';

export { MANIFEST_FILE } from './validators.js';

export interface PrecompileTarget {
  profile: ValidatorProfile;
  /** What the schema is, for the manifest. */
  label: string;
  schema: JsonSchema;
  /** Document schemas: the recipe's fingerprint, under which the manifest lists the generated files. */
  fingerprint?: string;
}

/** The document schemas pgplay validates with for the given action list. */
export function documentRecipes(list: ReadonlyArray<ActionSchemaSource> = actions): SchemaRecipe[] {
  return [inventorySchemaRecipe(), playbookSchemaRecipe(list), playbookSchemaRecipe(list, { hostsOptional: true })];
}

/**
 * Every schema pgplay validates with for the given action list: each document's, under both document
 * profiles (the lean one gives the verdict, the full one the errors), and each action's input.
 */
export function precompileTargets(list: ReadonlyArray<ActionSchemaSource> = actions): PrecompileTarget[] {
  return [
    ...documentRecipes(list).flatMap((recipe) =>
      DOCUMENT_PROFILES.map(
        (profile): PrecompileTarget => ({
          profile,
          label: profile === 'document' ? recipe.label : `${recipe.label} (${profile})`,
          schema: recipe.schema(),
          fingerprint: recipe.fingerprint,
        }),
      ),
    ),
    ...list.map((a): PrecompileTarget => ({ profile: 'input', label: `${a.name} input`, schema: a.schema })),
  ];
}

/** formats.cjs: the document profiles' custom formats, from the very functions the runtime uses. */
function formatsModule(): string {
  const lines = Object.entries(DOCUMENT_FORMATS).map(([name, check]) => `exports[${JSON.stringify(name)}] = ${check.toString()};`);
  return `"use strict";\n${lines.join('\n')}\n`;
}

/** Another process may be loading validators while a build runs: it must never see half a file. */
function writeAtomically(file: string, text: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, text);
  renameSync(temp, file);
}

/**
 * Generates a CommonJS validator module per target with ajv's standalone code generation, into a
 * directory emptied first (a module for a schema that no longer exists would only take space), and
 * the manifest: every module, and each document fingerprint with its modules and schema hash.
 * Returns the files written, validators first.
 */
export function precompileValidators(dir: string = VALIDATORS_DIR, targets: PrecompileTarget[] = precompileTargets()): string[] {
  const require = createRequire(import.meta.url);
  const { _ } = require('ajv') as typeof import('ajv');
  const standaloneCode = (require('ajv/dist/standalone') as typeof import('ajv/dist/standalone/index.js')).default;

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeAtomically(join(dir, FORMATS_FILE), formatsModule());

  const manifest: Manifest = { files: {}, fingerprints: {} };
  for (const { profile, label, schema, fingerprint } of targets) {
    const name = validatorFileName(profile, schema);
    if (fingerprint) {
      const entry = (manifest.fingerprints[fingerprint] ??= { label, schema: schemaHash(schema), files: {} });
      entry.files[profile] = name;
    }
    // Two actions may share one schema text: one module serves both.
    if (manifest.files[name]) continue;
    const formats = _`require(${`./${FORMATS_FILE}`})`;
    const ajv = newAjv(profile, { code: { source: true, formats } });
    writeAtomically(join(dir, name), standaloneCode(ajv, ajv.compile(compiledSchema(profile, schema))));
    manifest.files[name] = label;
  }
  writeAtomically(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return [...Object.keys(manifest.files), FORMATS_FILE, MANIFEST_FILE].map((name) => join(dir, name));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const files = precompileValidators();
  process.stdout.write(`wrote ${files.length - 2} validators to ${VALIDATORS_DIR}\n`);
}
