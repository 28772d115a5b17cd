import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import fc from 'fast-check';
import type { ValidateFunction } from 'ajv';
import { afterAll, describe, expect, test } from 'vitest';
import { loadAllActions } from '../../src/actions/registry.js';
import type { JsonSchema } from '../../src/actions/types.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import { parseYaml } from '../../src/load/yaml.js';
import { buildInventorySchema } from '../../src/schema/inventory.js';
import { buildPlaybookSchema } from '../../src/schema/playbook.js';
import { UNSTAMPED } from '../../src/schema/build-stamp.js';
import { DocumentSchema, inventoryDocument, playbookDocument } from '../../src/schema/documents.js';
import { MANIFEST_FILE, distStamp, precompileTargets, precompileValidators, shippedDocuments } from '../../src/schema/precompile.js';
import { validateDocument } from '../../src/schema/validate.js';
import { compileAtRuntime, type ValidatorProfile } from '../../src/schema/profiles.js';
import { FORMATS_FILE, VALIDATORS_DIR, ValidatorStore, validatorFileName, validatorFor, validatorOrigin, type Manifest } from '../../src/schema/validators.js';
import { fakeActions } from '../fixtures/fake-actions.js';

const actions = await loadAllActions();

/**
 * Validators generated at build time (dist/validators, by src/schema/precompile.ts) must behave
 * exactly like the ones ajv compiles at runtime: same verdict, same `errors` (schema and parentSchema
 * included, since the error mapper reads them), and for inputs the same coercions and defaults.
 * vitest's global setup builds dist/ with its validators before this file runs.
 */
const ROOT = resolve(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');
const SEED = 20251121;

const readDoc = (file: string): unknown => parseYaml(readFileSync(file, 'utf8'), file).data;
const yamlIn = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.yml')).map((f) => join(dir, f));

const inventorySchema = buildInventorySchema();
const playbookSchema = buildPlaybookSchema(actions);
const includedSchema = buildPlaybookSchema(actions, { hostsOptional: true });

const VALID_INVENTORY = readDoc(join(FIXTURES, 'valid', 'inventory.yml'));
const INVENTORIES = [VALID_INVENTORY, ...yamlIn(join(FIXTURES, 'invalid')).filter((f) => basename(f).startsWith('inventory')).map(readDoc)];
const PLAYBOOKS = [
  ...yamlIn(join(ROOT, 'playbooks')).map(readDoc),
  ...yamlIn(join(FIXTURES, 'invalid')).filter((f) => basename(f).startsWith('playbook')).map(readDoc),
  readDoc(join(FIXTURES, 'valid', 'nightly-backup.yml')),
  // The custom `regex` format, which generated code takes from formats.cjs.
  { name: 'p', params: { a: { type: 'string', pattern: '(' }, b: { type: 'string', pattern: '^x+$' } }, steps: [] },
];
const INCLUDED = [...yamlIn(join(ROOT, 'playbooks', 'include')).map(readDoc), ...PLAYBOOKS];

/** Runs both validators on their own copy of `data`; verdict, errors and the data afterwards must match. */
function expectSameOutcome(precompiled: ValidateFunction, runtime: ValidateFunction, data: unknown): boolean {
  const [a, b] = [structuredClone(data), structuredClone(data)];
  const verdict = precompiled(a);
  const errors = precompiled.errors;
  expect(runtime(b)).toBe(verdict);
  expect(errors).toStrictEqual(runtime.errors);
  expect(a).toStrictEqual(b);
  return verdict;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One edit at a path chosen by `steps` (indexes folded onto whatever containers are there). */
interface Mutation {
  steps: number[];
  kind: 'replace' | 'delete' | 'add';
  key: string;
  value: Json;
}

function mutate(data: unknown, m: Mutation): unknown {
  const copy = structuredClone(data) as Json;
  let node = copy;
  for (const step of m.steps) {
    const children = node && typeof node === 'object' ? Object.keys(node) : [];
    const child = children.length ? (node as Record<string, Json>)[children[step % children.length]!]! : undefined;
    if (child === undefined || child === null || typeof child !== 'object') break;
    node = child;
  }
  if (!node || typeof node !== 'object') return m.value;
  const keys = Object.keys(node);
  const target = keys.length ? keys[m.steps.length % keys.length]! : m.key;
  if (Array.isArray(node)) {
    const i = Number(target) || 0;
    if (m.kind === 'delete') node.splice(i, 1);
    else if (m.kind === 'add') node.push(m.value);
    else node[i] = m.value;
  } else if (m.kind === 'delete') delete node[target];
  else node[m.kind === 'add' ? m.key : target] = m.value;
  return copy;
}

/** Values users plausibly get wrong: strings that look like numbers, templates, empty things, wrong shapes. */
const wrongValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>('', '5', '0600', 'true', '{{ params.x }}', '(', null, 0, -1, 99999, true, [], {}, ['x'], { env: 'X' }, 'latest', 'primary'),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);
const mutation: fc.Arbitrary<Mutation> = fc.record({
  steps: fc.array(fc.nat(40), { maxLength: 6 }),
  kind: fc.constantFrom('replace', 'delete', 'add'),
  key: fc.constantFrom('hosts', 'steps', 'postgres', 'pgdata', 'timeuot', 'role', 'version', 'mode', 'type', 'zzz'),
  value: wrongValue,
});

describe('after a build, the registry schemas come from dist/validators', () => {
  test.each([
    ['inventory', inventorySchema],
    ['playbook', playbookSchema],
    ['included playbook', includedSchema],
  ])('the %s schema is precompiled', (_name, schema) => {
    expect(existsSync(join(VALIDATORS_DIR, validatorFileName('document', schema)))).toBe(true);
    expect(validatorOrigin(validatorFor('document', schema))).toBe('precompiled');
  });

  test.each(actions.map((a) => [a.name, a] as const))('the %s input schema is precompiled', (_name, action) => {
    expect(validatorOrigin(validatorFor('input', action.schema))).toBe('precompiled');
  });

  test('the manifest lists one module per schema, named after it, each document by name, and the build that made them', async () => {
    const manifest = JSON.parse(readFileSync(join(VALIDATORS_DIR, MANIFEST_FILE), 'utf8')) as Manifest;
    const expected = Object.fromEntries(precompileTargets(actions).map((t) => [validatorFileName(t.profile, t.schema), t.label]));
    expect(manifest.files).toEqual(expected);
    expect(Object.values(manifest.files)).toEqual(expect.arrayContaining(['inventory', 'playbook', 'playbook-included', 'pgbackrest input']));
    expect(manifest.documents).toEqual(Object.fromEntries(shippedDocuments(actions).map((d) => [d.name, validatorFileName('document', d.schema())])));
    // The stamp hashes the version and dist's code; the build wrote the same one into dist's stamp module.
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(manifest).toMatchObject({ version, stamp: distStamp(join(ROOT, 'dist'), version) });
    const built = (await import(join(ROOT, 'dist', 'schema', 'build-stamp.js'))) as { BUILD_STAMP: string };
    expect(built.BUILD_STAMP).toBe(manifest.stamp);
  });

  test('validating a playbook and an inventory builds neither schema and loads none of ajv\'s compiler, only its small runtime helpers', () => {
    const result = probe(ROOT);
    expect(result.errors).toEqual([]);
    expect(result.built).toEqual({ inventory: false, playbook: false });
    expect(result.ajv.length).toBeGreaterThan(0);
    expect(result.ajv.filter((file) => !file.startsWith('dist/runtime/'))).toEqual([]);
  });
});

/**
 * Loads an inventory and a playbook through `root`'s dist/ in a fresh node, as the CLI does (and
 * validates every action's input), and reports the errors, which document schemas were built, and
 * which files of ajv were loaded.
 */
function probe(root: string, playbook = join(ROOT, 'playbooks', 'nightly-backup.yml')): { errors: string[]; built: Record<string, boolean>; ajv: string[] } {
  const script = `
    import { createRequire } from 'node:module';
    const { loadInventory } = await import('./dist/load/inventory.js');
    const { loadPlaybook } = await import('./dist/load/playbook.js');
    const { shippedActions: actions, loadAllActions } = await import('./dist/actions/registry.js');
    const { validateRenderedInput } = await import('./dist/engine/input.js');
    const { inventoryDocument, playbookDocument } = await import('./dist/schema/documents.js');
    const errors = [];
    try {
      const { inventory } = await loadInventory(${JSON.stringify(join(FIXTURES, 'valid', 'inventory.yml'))});
      await loadPlaybook(${JSON.stringify(playbook)}, { actions, inventory });
    } catch (e) {
      errors.push(...(e.errors ?? [e]).map((x) => (x.format ? x.format() : String(x))));
    }
    for (const a of await loadAllActions()) { try { validateRenderedInput(a, {}); } catch {} }
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/ajv/'));
    process.stdout.write(JSON.stringify({
      errors,
      built: { inventory: inventoryDocument().isBuilt, playbook: playbookDocument(actions, { shipped: true }).isBuilt },
      ajv: loaded.map((k) => k.slice(k.indexOf('/node_modules/ajv/') + 18)),
    }));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' })) as ReturnType<typeof probe>;
}

describe('document validators are trusted only by the build that generated them', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'pgplay-stamp-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  /** A copy of the built package: dist/ (validators included), with the repository's dependencies. */
  function copyOfPackage(): string {
    const root = mkdtempSync(join(scratch, 'package-'));
    cpSync(join(ROOT, 'dist'), join(root, 'dist'), { recursive: true, filter: (src) => !/\/dist\/(bench|\.validators-)/.test(src) });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ type: 'module', version: '0.0.0' }));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    symlinkSync(join(ROOT, 'templates'), join(root, 'templates'));
    return root;
  }

  function edit(file: string, from: string, to: string): void {
    const text = readFileSync(file, 'utf8');
    expect(text).toContain(from);
    writeFileSync(file, text.replace(from, to));
  }

  const NAME = "name: { type: 'string', description: 'What the step achieves, shown in output' }";
  const SHORT_NAMES = NAME.replace("type: 'string',", "type: 'string', maxLength: 3,");
  const PLAYBOOK = join(ROOT, 'playbooks', 'nightly-backup.yml');

  test('as built, a copy of the package serves its generated validators without building a schema', () => {
    expect(probe(copyOfPackage())).toMatchObject({ errors: [], built: { inventory: false, playbook: false } });
  });

  test('after a plain tsc (the stamp module back to its placeholder), the schemas are built and compiled: a change to their code is enforced', () => {
    const root = copyOfPackage();
    edit(join(root, 'dist', 'schema', 'playbook.js'), NAME, SHORT_NAMES);
    // Without the stamp going back, the edited code would be served the old validator: shown by the control below.
    const stale = probe(root);
    expect(stale.errors).toEqual([]);
    writeFileSync(join(root, 'dist', 'schema', 'build-stamp.js'), `export const UNSTAMPED = '${UNSTAMPED}';\nexport const BUILD_STAMP = UNSTAMPED;\n`);
    const result = probe(root);
    expect(result.built).toEqual({ inventory: true, playbook: true });
    expect(result.ajv.some((file) => file.startsWith('dist/compile/'))).toBe(true);
    expect(result.errors.length).toBeGreaterThan(0);
    expect(result.errors[0]).toContain(`${PLAYBOOK}:`);
    expect(result.errors[0]).toContain('for "name"');
  });

  test('validators generated by another build (another stamp in the manifest) are not trusted', () => {
    const root = copyOfPackage();
    const manifest = join(root, 'dist', 'validators', MANIFEST_FILE);
    edit(manifest, '"stamp": "', '"stamp": "another-build-');
    expect(probe(root).built).toEqual({ inventory: true, playbook: true });
  });

  test('running from src/ (unstamped), a named document schema is built, and served by the module generated for its text', () => {
    const store = new ValidatorStore(VALIDATORS_DIR);
    expect(store.trusted).toBe(false);
    const inventory = new DocumentSchema('inventory', () => buildInventorySchema());
    expect(store.find('document', inventory)).toBeUndefined();
    expect(store.origin(store.get('document', inventory))).toBe('runtime');
    expect(inventory.isBuilt).toBe(true);
    expect(validatorOrigin(validatorFor('document', inventoryDocument().schema()))).toBe('precompiled');
  });

  test('a custom action list names no generated validator, even when the stamp matches', () => {
    const manifest = JSON.parse(readFileSync(join(VALIDATORS_DIR, MANIFEST_FILE), 'utf8')) as Manifest;
    const store = new ValidatorStore(VALIDATORS_DIR, manifest.stamp);
    expect(store.trusted).toBe(true);
    const custom = playbookDocument(fakeActions);
    expect(custom.name).toBeUndefined();
    expect(store.origin(store.get('document', custom))).toBe('runtime');
    const shipped = new DocumentSchema('playbook', () => buildPlaybookSchema(actions));
    expect(store.origin(store.get('document', shipped))).toBe('precompiled');
    expect(shipped.isBuilt).toBe(false);
  });
});

describe('precompiled and runtime-compiled validators give identical results', () => {
  const documents: Array<[string, JsonSchema, unknown[]]> = [
    ['inventory', inventorySchema, INVENTORIES],
    ['playbook', playbookSchema, PLAYBOOKS],
    ['included playbook', includedSchema, INCLUDED],
  ];

  test.each(documents)('%s: the shipped files and fixtures, valid and invalid', (_name, schema, corpus) => {
    const precompiled = validatorFor('document', schema);
    expect(validatorOrigin(precompiled)).toBe('precompiled');
    const runtime = compileAtRuntime('document', schema);
    const verdicts = corpus.map((data) => expectSameOutcome(precompiled, runtime, data));
    // The corpus holds both kinds, so both code paths were compared.
    expect(verdicts).toContain(true);
    expect(verdicts).toContain(false);
  });

  test.each(documents)('%s: 300 mutations of those files', (_name, schema, corpus) => {
    const precompiled = validatorFor('document', schema);
    const runtime = compileAtRuntime('document', schema);
    let invalid = 0;
    fc.assert(
      fc.property(fc.nat(corpus.length - 1), mutation, (i, m) => {
        if (!expectSameOutcome(precompiled, runtime, mutate(corpus[i], m))) invalid++;
      }),
      { numRuns: 300, seed: SEED },
    );
    expect(invalid).toBeGreaterThan(100);
  });

  test('the custom regex format is checked by generated code, through formats.cjs', () => {
    const validate = validatorFor('document', playbookSchema);
    expect(validate(PLAYBOOKS.at(-1))).toBe(false);
    expect(validate.errors).toMatchObject([{ instancePath: '/params/a/pattern', keyword: 'format', params: { format: 'regex' }, data: '(' }]);
  });

  test('validateDocument reports the same positioned errors either way', () => {
    const file = join(FIXTURES, 'invalid', 'playbook-shape.yml');
    const doc = parseYaml(readFileSync(file, 'utf8'), file);
    const precompiled = validateDocument(doc, playbookSchema).map((e) => e.format());
    const runtime = validateDocument(doc, structuredClone(playbookSchema)); // an equal schema text: the same module
    expect(runtime.map((e) => e.format())).toEqual(precompiled);
    expect(precompiled).toContain(`${file}:9:42, step backup: invalid value "weekly" for "type" (expected one of full, diff, incr, default, immediate, lsn, name, xid, time, preserve, standby, none)`);
  });

  /** Inputs as rendering leaves them: strings everywhere, plus the wrong shapes. */
  function inputArbitrary(schema: JsonSchema): fc.Arbitrary<Record<string, Json>> {
    const keys = [...Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {}), 'unknown_key'];
    const value: fc.Arbitrary<Json> = fc.oneof(
      wrongValue,
      fc.constantFrom<Json>('/var/lib/x', 'backup', 'full', 'started', '30s', 'false', '12', ['a', 'b'], ['1', 2]),
    );
    return fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 5 });
  }

  test.each(actions.map((a) => [a.name, a] as const))('%s input: coercion, defaults and errors on 200 rendered inputs', (_name, action) => {
    const precompiled = validatorFor('input', action.schema);
    expect(validatorOrigin(precompiled)).toBe('precompiled');
    const runtime = compileAtRuntime('input', action.schema);
    const used = PLAYBOOKS.flatMap((p) => ((p as { steps?: unknown[] })?.steps ?? []) as Array<Record<string, unknown>>)
      .map((step) => step?.[action.name])
      .filter((input) => input && typeof input === 'object');
    for (const input of used) expectSameOutcome(precompiled, runtime, input);
    fc.assert(
      fc.property(inputArbitrary(action.schema), (input) => void expectSameOutcome(precompiled, runtime, input)),
      { numRuns: 200, seed: SEED },
    );
  });

  test('validateRenderedInput coerces and fills defaults through the precompiled file validator', () => {
    const file = actions.find((a) => a.name === 'file')!;
    expect(validatorOrigin(validatorFor('input', file.schema))).toBe('precompiled');
    expect(validateRenderedInput(file, { path: '/x', mode: '0600' })).toEqual({ path: '/x', mode: '0600', state: 'file', force: false });
    expect(() => validateRenderedInput(file, { path: '/x', state: 'gone' })).toThrow(
      'file input is invalid after rendering: state: must be one of directory, file, absent, link, touch',
    );
  });
});

describe('without a generated module, the schema is compiled as before', () => {
  test('a custom action list (no module for it) is compiled at runtime', () => {
    const schema = buildPlaybookSchema(fakeActions);
    expect(existsSync(join(VALIDATORS_DIR, validatorFileName('document', schema)))).toBe(false);
    const validate = validatorFor('document', schema);
    expect(validatorOrigin(validate)).toBe('runtime');
    expect(validate(readDoc(join(FIXTURES, 'valid', 'nightly-backup.yml')))).toBe(true);
  });

  test('a registry schema changed since the build is compiled at runtime, and the change is honoured', () => {
    const changed = structuredClone(inventorySchema) as { properties: { cluster: Record<string, unknown> } };
    changed.properties.cluster = { ...changed.properties.cluster, maxLength: 3 };
    const validate = validatorFor('document', changed);
    expect(validatorOrigin(validate)).toBe('runtime');
    expect(validate(VALID_INVENTORY)).toBe(false);
    expect(validate.errors).toMatchObject([{ instancePath: '/cluster', keyword: 'maxLength', params: { limit: 3 } }]);
    // The same text as the build's, in another object: the module is found by content, not identity.
    expect(validatorOrigin(validatorFor('document', structuredClone(inventorySchema)))).toBe('precompiled');
  });

  test('an action input schema changed since the build is compiled at runtime', () => {
    const file = actions.find((a) => a.name === 'file')!;
    const changed = { ...file.schema, required: ['path', 'owner'] };
    const validate = validatorFor('input', changed);
    expect(validatorOrigin(validate)).toBe('runtime');
    expect(validate({ path: '/x' })).toBe(false);
    expect(validate.errors).toMatchObject([{ keyword: 'required', params: { missingProperty: 'owner' } }]);
  });

  test('the same schema under the other profile is a different module', () => {
    expect(validatorFileName('input', inventorySchema)).not.toBe(validatorFileName('document', inventorySchema));
    expect(validatorOrigin(validatorFor('input', inventorySchema))).toBe('runtime');
  });

  test('one validator per schema object and profile', () => {
    expect(validatorFor('document', playbookSchema)).toBe(validatorFor('document', playbookSchema));
    const schema = buildPlaybookSchema(fakeActions);
    expect(validatorFor('document', schema)).toBe(validatorFor('document', schema));
  });
});

describe('precompileValidators', () => {
  // Inside the package, like dist/validators: generated code finds ajv's runtime helpers from where it lies.
  const dir = mkdtempSync(join(ROOT, 'dist', '.validators-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('empties the directory, then writes a module per target, formats.cjs and the manifest', () => {
    writeFileSync(join(dir, 'document-stale.cjs'), 'module.exports = () => true;\n');
    const targets = precompileTargets(fakeActions);
    const files = precompileValidators(dir, targets, { version: '9.9.9', stamp: 'test-stamp' });
    const names = targets.map((t) => validatorFileName(t.profile, t.schema));
    expect(readdirSync(dir).sort()).toEqual([...new Set(names), FORMATS_FILE, MANIFEST_FILE].sort());
    expect(files.map((f) => basename(f))).toEqual([...new Set(names), FORMATS_FILE, MANIFEST_FILE]);
    expect(readFileSync(join(dir, FORMATS_FILE), 'utf8')).toMatch(/^"use strict";\nexports\["regex"\] = function isRegex\(text\)/);
  });

  test('a store over that directory serves the fake action list precompiled, with the same errors as runtime', () => {
    const store = new ValidatorStore(dir, 'test-stamp');
    const profiles: Array<[ValidatorProfile, JsonSchema, unknown[]]> = [
      ['document', buildPlaybookSchema(fakeActions), PLAYBOOKS],
      ['document', buildPlaybookSchema(fakeActions, { hostsOptional: true }), INCLUDED],
      ['document', buildInventorySchema(), INVENTORIES],
      ...fakeActions.map((a): [ValidatorProfile, JsonSchema, unknown[]] => ['input', a.schema, [{}, { argv: ['x'], shell: 'y' }, { src: 'a', dest: 5 }]]),
    ];
    for (const [profile, schema, corpus] of profiles) {
      const precompiled = store.get(profile, schema);
      expect(store.origin(precompiled)).toBe('precompiled');
      const runtime = compileAtRuntime(profile, schema);
      for (const data of corpus) expectSameOutcome(precompiled, runtime, data);
    }
    // The package's own store knows nothing of this directory.
    expect(validatorOrigin(validatorFor('document', buildPlaybookSchema(fakeActions, { hostsOptional: true })))).toBe('runtime');
  });

  test('generated code is plain CommonJS that needs nothing but ajv\'s runtime helpers and formats.cjs', () => {
    const code = readFileSync(join(dir, validatorFileName('document', buildPlaybookSchema(fakeActions))), 'utf8');
    const required = [...code.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    expect(required).toContain('./formats.cjs');
    expect(required.filter((r) => r !== './formats.cjs' && !r!.startsWith('ajv/dist/runtime/'))).toEqual([]);
    expect(code.startsWith('"use strict";module.exports = ')).toBe(true);
  });
});
