import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { actions } from '../../src/actions/registry.js';
import type { ActionSchemaSource } from '../../src/schema/playbook.js';
import { MANIFEST_FILE, precompileTargets, precompileValidators } from '../../src/schema/precompile.js';
import { moduleClosure, playbookSchemaRecipe, sourceStamp } from '../../src/schema/fingerprint.js';
import {
  VALIDATORS_DIR,
  ValidatorStore,
  precompiledValidator,
  schemaHash,
  validatorFileName,
  validatorOrigin,
  type Manifest,
} from '../../src/schema/validators.js';
import { fakeActions } from '../fixtures/fake-actions.js';

/**
 * The fast path of document validation: a valid document is accepted by the lean validator alone,
 * found through a fingerprint of what its schema is built from (no schema built, no 66 KB hashed),
 * and a fingerprint is only trusted while the code that builds the schema is the code that was
 * built. vitest's global setup builds dist/ with its validators before this file runs.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
const INVENTORY = join(ROOT, 'test', 'fixtures', 'valid', 'inventory.yml');

const readManifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;

interface Probe {
  errors: string[];
  /** Whether each recipe built its schema. */
  built: { inventory: boolean; playbook: boolean };
  /** Generated document modules loaded, by file name. */
  modules: string[];
  /** Whether ajv's compiler was loaded (something was compiled in the process). */
  compiled: boolean;
}

/**
 * Loads an inventory and a playbook through `root`'s dist/ in a fresh node, as the CLI does, and
 * reports what it took: errors, which schemas were built and which generated modules were loaded.
 */
function probe(root: string, playbook: string): Probe {
  const script = `
    import { createRequire } from 'node:module';
    const { loadInventory } = await import('./dist/load/inventory.js');
    const { loadPlaybook } = await import('./dist/load/playbook.js');
    const { actions } = await import('./dist/actions/registry.js');
    const { inventorySchemaRecipe, playbookSchemaRecipe } = await import('./dist/schema/fingerprint.js');
    const errors = [];
    try {
      const { inventory } = await loadInventory(${JSON.stringify(INVENTORY)});
      await loadPlaybook(${JSON.stringify(playbook)}, { actions, inventory });
    } catch (e) {
      errors.push(...(e.errors ?? [e]).map((x) => x.format ? x.format() : String(x)));
    }
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    process.stdout.write(JSON.stringify({
      errors,
      built: { inventory: inventorySchemaRecipe().isBuilt, playbook: playbookSchemaRecipe(actions).isBuilt },
      modules: loaded.filter((k) => /\\/validators\\/document-/.test(k)).map((k) => k.slice(k.lastIndexOf('/') + 1)).sort(),
      compiled: loaded.some((k) => k.includes('/node_modules/ajv/dist/compile/')),
    }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })) as Probe;
}

const STEPS = `name: probe
steps:
  - id: make-dir
    name: the directory
    hosts: all
    file: { path: /tmp/probe, state: directory, mode: "0755" }
`;

const scratch = mkdtempSync(join(tmpdir(), 'pgplay-fast-path-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const VALID = join(scratch, 'valid.yml');
writeFileSync(VALID, STEPS);
const INVALID = join(scratch, 'invalid.yml');
writeFileSync(INVALID, STEPS.replace('mode: "0755"', 'mode: "rwx"'));

const leanFile = (label: string) => Object.values(readManifest(VALIDATORS_DIR).fingerprints).find((e) => e.label === label)!.files;

describe('the package (dist/) finds document validators by fingerprint', () => {
  test('a valid inventory and playbook load only the lean validators, and build no schema', () => {
    const result = probe(ROOT, VALID);
    expect(result.errors).toEqual([]);
    expect(result.built).toEqual({ inventory: false, playbook: false });
    expect(result.modules).toEqual([leanFile('inventory')['document-lean'], leanFile('playbook')['document-lean']].sort());
    expect(result.compiled).toBe(false);
  });

  test('an invalid playbook loads the full validator too, for the positioned errors, still without building its schema', () => {
    const result = probe(ROOT, INVALID);
    expect(result.errors).toEqual([`${INVALID}:6:55, step make-dir: invalid value "rwx" for "mode" (expected a string matching /^[0-7]{3,4}$/)`]);
    expect(result.built).toEqual({ inventory: false, playbook: false });
    const playbook = leanFile('playbook');
    expect(result.modules).toEqual([leanFile('inventory')['document-lean'], playbook['document-lean'], playbook.document].sort());
    expect(result.compiled).toBe(false);
  });

  test('the module closure behind a stamp holds every module a schema is built from, and no type-only import', () => {
    const closure = (file: string) => [...moduleClosure([file]).keys()].map((f) => relative(ROOT, f)).sort();
    const dist = (modules: string[]) => modules.map((m) => `dist/${m}.js`).sort();
    expect(closure(join(ROOT, 'dist', 'schema', 'playbook.js'))).toEqual(
      // tsc drops an import whose names are only used in types: schema/playbook uses STEP_KEYS
      // only so, and dist runs without model/playbook.js.
      dist(['schema/playbook', 'schema/common', 'schema/templated', 'core/duration', 'core/errors']),
    );
    expect(closure(join(ROOT, 'dist', 'schema', 'inventory.js'))).toEqual(
      dist(['schema/inventory', 'model/inventory', 'schema/common', 'core/duration', 'core/errors']),
    );
    // From the sources, type-only imports (`import type`) are left out too, plain ones followed.
    expect(closure(join(ROOT, 'src', 'schema', 'playbook.ts'))).toEqual(
      ['schema/playbook', 'schema/common', 'schema/templated', 'core/duration', 'core/errors', 'model/playbook'].map((m) => `src/${m}.ts`).sort(),
    );
  });
});

describe('running from src/, fingerprints never match the dist manifest', () => {
  test('the registry playbook schema is built and found by its full hash, which the manifest records', () => {
    const manifest = readManifest(VALIDATORS_DIR);
    const recipe = playbookSchemaRecipe([...actions]);
    // The stamp is over these .ts sources, not over the .js that precompile read.
    expect(manifest.fingerprints[recipe.fingerprint]).toBeUndefined();
    const lean = precompiledValidator('document-lean', recipe)!;
    expect(validatorOrigin(lean)).toBe('precompiled');
    expect(recipe.isBuilt).toBe(true);
    const entry = Object.values(manifest.fingerprints).find((e) => e.schema === schemaHash(recipe.schema()))!;
    expect(entry.label).toBe('playbook');
    expect(entry.files['document-lean']).toBe(validatorFileName('document-lean', recipe.schema()));
  });
});

describe('a store over validators precompiled here (from src/)', () => {
  // Inside the package, like dist/validators: generated code finds ajv's runtime helpers from where it lies.
  const dir = mkdtempSync(join(ROOT, 'dist', '.validators-fast-path-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  precompileValidators(dir, precompileTargets(fakeActions));

  test('an equal action list is served by fingerprint: both document profiles, no schema built', () => {
    const store = new ValidatorStore(dir);
    const recipe = playbookSchemaRecipe([...fakeActions]);
    const lean = store.find('document-lean', recipe)!;
    const full = store.find('document', recipe)!;
    expect(store.origin(lean)).toBe('precompiled');
    expect(store.origin(full)).toBe('precompiled');
    expect(recipe.isBuilt).toBe(false);
    expect(lean).not.toBe(full);
    // The very modules the full hash names.
    expect(store.find('document-lean', recipe.schema())).toBe(lean);
    expect(store.find('document', recipe.schema())).toBe(full);
    expect(readManifest(dir).fingerprints[recipe.fingerprint]!.schema).toBe(schemaHash(recipe.schema()));
  });

  test('the included variant has its own fingerprint and modules', () => {
    const store = new ValidatorStore(dir);
    const plain = playbookSchemaRecipe([...fakeActions]);
    const included = playbookSchemaRecipe([...fakeActions], { hostsOptional: true });
    expect(included.fingerprint).not.toBe(plain.fingerprint);
    expect(store.find('document-lean', included)).not.toBe(store.find('document-lean', plain));
    expect(included.isBuilt).toBe(false);
  });

  test('a changed action schema has another fingerprint: its schema is built, compiled here, and the change honoured', () => {
    const store = new ValidatorStore(dir);
    const changed: ActionSchemaSource[] = fakeActions.map((a) =>
      a.name === 'command' ? { ...a, schema: { ...a.schema, required: ['creates'] } } : a,
    );
    const recipe = playbookSchemaRecipe(changed);
    expect(readManifest(dir).fingerprints[recipe.fingerprint]).toBeUndefined();
    expect(store.find('document-lean', recipe)).toBeUndefined();
    expect(recipe.isBuilt).toBe(true);
    const validate = store.get('document', recipe);
    expect(store.origin(validate)).toBe('runtime');
    const step = { id: 'a', hosts: 'all', command: { argv: ['true'] } };
    expect(validate({ name: 'p', steps: [step] })).toBe(false);
    expect(validate.errors).toMatchObject([{ keyword: 'required', params: { missingProperty: 'creates' } }]);
  });

  test('a manifest without fingerprints (an older build) still serves the modules, by full hash', () => {
    const old = mkdtempSync(join(ROOT, 'dist', '.validators-old-'));
    try {
      cpSync(dir, old, { recursive: true });
      const manifest = readManifest(old);
      writeFileSync(join(old, MANIFEST_FILE), JSON.stringify({ files: manifest.files }));
      const store = new ValidatorStore(old);
      const recipe = playbookSchemaRecipe([...fakeActions]);
      expect(store.origin(store.find('document-lean', recipe)!)).toBe('precompiled');
      expect(recipe.isBuilt).toBe(true);
    } finally {
      rmSync(old, { recursive: true, force: true });
    }
  });

  test('stamps follow the text of every module in the closure', () => {
    const tree = mkdtempSync(join(scratch, 'tree-'));
    for (const sub of ['a', 'b']) mkdirSync(join(tree, sub));
    writeFileSync(join(tree, 'a', 'entry.js'), "import { x } from '../b/dep.js';\nimport type { T } from './types.js';\nexport const y = x;\n");
    writeFileSync(join(tree, 'b', 'dep.js'), "export const x = 1;\n");
    const entry = [join(tree, 'a', 'entry.js')];
    expect([...moduleClosure(entry).keys()].map((f) => relative(tree, f)).sort()).toEqual(['a/entry.js', 'b/dep.js']);
    const before = sourceStamp(entry);
    // Stamps are kept per process; a new entry list reads the files again.
    writeFileSync(join(tree, 'b', 'dep.js'), "export const x = 2;\n");
    expect(sourceStamp([...entry, join(tree, 'b', 'dep.js')])).not.toBe(before);
  });
});

describe('a dist/ whose schema code changed after its validators were generated is never served a stale one', () => {
  /** A copy of the built package: dist/ (validators included), with the repository's dependencies. */
  function copyOfPackage(): string {
    const root = mkdtempSync(join(scratch, 'package-'));
    cpSync(join(ROOT, 'dist'), join(root, 'dist'), {
      recursive: true,
      filter: (src) => !/\/dist\/(bench|\.validators-)/.test(src),
    });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module' }));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    return root;
  }

  function edit(file: string, from: string, to: string): void {
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(from);
    writeFileSync(file, text.replace(from, to));
  }

  const NAME = "name: { type: 'string', description: 'What the step achieves, shown in output' }";

  test('unchanged, the copy finds its lean validators by fingerprint', () => {
    const root = copyOfPackage();
    const result = probe(root, VALID);
    expect(result).toEqual({ errors: [], built: { inventory: false, playbook: false }, modules: expect.any(Array), compiled: false });
    expect(result.modules).toHaveLength(2);
  });

  test("a constraint added to the playbook schema's code without a rebuild is enforced: the schema is built and compiled here", () => {
    const root = copyOfPackage();
    edit(join(root, 'dist', 'schema', 'playbook.js'), NAME, NAME.replace("type: 'string',", "type: 'string', maxLength: 3,"));
    const result = probe(root, VALID);
    expect(result.errors).toEqual([`${VALID}:4:11, step make-dir: invalid value "the directory" for "name" (expected a string)`]);
    expect(result.built).toEqual({ inventory: false, playbook: true });
    // The inventory's code did not change; the playbook's validators were compiled, none loaded.
    expect(result.modules).toEqual([leanFile('inventory')['document-lean']]);
    expect(result.compiled).toBe(true);
  });

  test("the recipes' own code is stamped too: a builder argument changed without a rebuild serves the schema it now builds", () => {
    const root = copyOfPackage();
    const call = 'buildPlaybookSchema(actions, { hostsOptional })';
    edit(join(root, 'dist', 'schema', 'fingerprint.js'), call, 'buildPlaybookSchema(actions, { hostsOptional: true })');
    const result = probe(root, VALID);
    expect(result.errors).toEqual([]);
    expect(result.built).toEqual({ inventory: true, playbook: true });
    // The plain playbook's recipe now builds the included variant, which the full hash finds.
    expect(result.modules).toEqual([leanFile('inventory')['document-lean'], leanFile('playbook (included)')['document-lean']].sort());
    expect(result.compiled).toBe(false);
  });

  test.each([
    ['schema/common.js', 'behind both schemas'],
    ['core/duration.js', 'imported by common.js'],
    ['schema/profiles.js', "the profiles' options and formats"],
    ['schema/lean-schema.js', 'leanSchema'],
    ['schema/fingerprint.js', "the recipes, which choose the builders' arguments"],
  ])('a change to %s (%s) that leaves the schemas as they were finds the same modules through the full hash', (file) => {
    const root = copyOfPackage();
    const path = join(root, 'dist', file);
    writeFileSync(path, `${readFileSync(path, 'utf8')}\n// edited after the build\n`);
    const result = probe(root, VALID);
    expect(result.errors).toEqual([]);
    expect(result.built).toEqual({ inventory: true, playbook: true });
    expect(result.modules).toEqual([leanFile('inventory')['document-lean'], leanFile('playbook')['document-lean']].sort());
    expect(result.compiled).toBe(false);
  });
});
