import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import type { JsonSchema } from './json-schema.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { UNSTAMPED } from './build-stamp.js';
import { inventoryDocument, playbookDocument, playbookShellDocument, stepInputSchema, type DocumentSchema } from './documents.js';
import type { ActionSchemaSource } from './playbook.js';
import { DOCUMENT_FORMATS, newAjv, type ValidatorProfile } from './profiles.js';
import { FORMATS_FILE, MANIFEST_FILE, VALIDATORS_DIR, validatorFileName, type Manifest } from './validators.js';

export { MANIFEST_FILE } from './validators.js';

export interface PrecompileTarget {
  profile: ValidatorProfile;
  /** What the schema is, for the manifest. */
  label: string;
  schema: JsonSchema;
  /** Document schemas: the name under which the manifest lists the generated module. */
  document?: string;
}

/** The document schemas pgplay validates with for the given action list, as the shipped list names them. */
export function shippedDocuments(list: ReadonlyArray<ActionSchemaSource>): DocumentSchema[] {
  return [
    inventoryDocument(),
    playbookDocument(list, { shipped: true }),
    playbookDocument(list, { hostsOptional: true, shipped: true }),
    playbookShellDocument(list, { shipped: true }),
    playbookShellDocument(list, { hostsOptional: true, shipped: true }),
  ];
}

/** Every schema pgplay validates with for the given action list: each document's and each action's input. */
export function precompileTargets(list: ReadonlyArray<ActionSchemaSource>): PrecompileTarget[] {
  return [
    ...shippedDocuments(list).map((d): PrecompileTarget => ({ profile: 'document', label: d.name!, schema: d.schema(), document: d.name })),
    ...list.map((a): PrecompileTarget => ({ profile: 'input', label: `${a.name} input`, schema: a.schema })),
    ...list.map((a): PrecompileTarget => ({ profile: 'document', label: `${a.name} step input`, schema: stepInputSchema(a) })),
  ];
}

/** formats.cjs: the document profile's custom formats, from the very functions the runtime uses. */
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
 * the manifest: the version and stamp of this build, every module, and the document modules by name.
 * Returns the files written, validators first.
 */
export function precompileValidators(
  dir: string,
  targets: PrecompileTarget[],
  stamp: { version: string; stamp: string } = { version: 'unknown', stamp: UNSTAMPED },
): string[] {
  const require = createRequire(import.meta.url);
  const { _ } = require('ajv') as typeof import('ajv');
  const standaloneCode = (require('ajv/dist/standalone') as typeof import('ajv/dist/standalone/index.js')).default;

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeAtomically(join(dir, FORMATS_FILE), formatsModule());

  const manifest: Manifest = { ...stamp, documents: {}, files: {} };
  for (const { profile, label, schema, document } of targets) {
    const name = validatorFileName(profile, schema);
    if (document) manifest.documents[document] = name;
    // Two actions may share one schema text: one module serves both.
    if (manifest.files[name]) continue;
    const formats = _`require(${`./${FORMATS_FILE}`})`;
    const ajv = newAjv(profile, { code: { source: true, formats } });
    writeAtomically(join(dir, name), standaloneCode(ajv, ajv.compile(schema)));
    manifest.files[name] = label;
  }
  writeAtomically(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return [...Object.keys(manifest.files), FORMATS_FILE, MANIFEST_FILE].map((name) => join(dir, name));
}

/**
 * The stamp of a built dist/: a hash of the package version and of every compiled module, which is
 * what builds the schemas and runs the validators. The generated validators, the stamp module itself
 * and the benchmark's own build (dist/bench) are left out.
 */
export function distStamp(distDir: string, version: string): string {
  const hash = createHash('sha256').update(`${version}\0`);
  // dist/bundle is made from the stamped code after this (src/app/bundle-cli.ts): it holds the stamp, so it is no input of it.
  const skip = new Set([join(distDir, 'validators'), join(distDir, 'bench'), join(distDir, 'bundle'), join(distDir, 'schema', 'build-stamp.js')]);
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, entry.name);
      if (skip.has(path)) continue;
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.js')) hash.update(`${relative(distDir, path)}\0${readFileSync(path)}\0`);
    }
  };
  visit(distDir);
  return hash.digest('hex').slice(0, 32);
}

/**
 * `npm run build` (its entry point is src/app/build-validators.ts, which gives the shipped actions):
 * generate dist/validators for the action list, then stamp them and this build's code with one stamp.
 */
export function buildValidators(distDir: string, list: ReadonlyArray<ActionSchemaSource>): string {
  const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const stamp = distStamp(distDir, version);
  const files = precompileValidators(VALIDATORS_DIR, precompileTargets(list), { version, stamp });
  writeAtomically(
    join(distDir, 'schema', 'build-stamp.js'),
    `// Written by the build (dist/app/build-validators.js): the stamp of dist/validators/${MANIFEST_FILE}.\nexport const UNSTAMPED = 'unstamped';\nexport const BUILD_STAMP = ${JSON.stringify(stamp)};\n`,
  );
  return `wrote ${files.length - 2} validators to ${VALIDATORS_DIR} (build ${version}, stamp ${stamp})\n`;
}
