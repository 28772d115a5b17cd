/**
 * The state directory's parse cache (src/load/parse-cache.ts): an unchanged inventory or playbook is
 * neither parsed nor validated again; a changed text, a corrupted, foreign or other build's entry is
 * never trusted; an error in a cached document is still placed at file:line:col.
 */
import { chmod, copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PgplayErrors } from '../../src/core/errors.js';
import { loadInventory } from '../../src/load/inventory.js';
import { parseCacheIn, readCachedParse, type ParseCache } from '../../src/load/parse-cache.js';
import { loadPlaybook } from '../../src/load/playbook.js';
import { yamlParseCount } from '../../src/load/yaml.js';
import { yamlLib } from '../../src/load/yaml-lib.js';
import { fakeActions } from '../fixtures/fake-actions.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'valid');
let dir: string;
let cache: ParseCache;
let inventoryFile: string;
let playbookFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-parse-cache-'));
  cache = parseCacheIn(join(dir, 'state'), 'test-build');
  inventoryFile = join(dir, 'inventory.yml');
  await copyFile(join(FIXTURES, 'inventory.yml'), inventoryFile);
  playbookFile = join(dir, 'nightly-backup.yml');
  await copyFile(join(FIXTURES, 'nightly-backup.yml'), playbookFile);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Parses done by the YAML library during `load`: of documents (parseYaml), and of bare values (the library's own parse). */
async function parses(load: () => Promise<unknown>): Promise<number> {
  const bare = vi.spyOn(yamlLib(), 'parse');
  const before = yamlParseCount();
  try {
    await load();
    return yamlParseCount() - before + bare.mock.calls.length;
  } finally {
    bare.mockRestore();
  }
}

async function failure(load: () => Promise<unknown>): Promise<string[]> {
  const e = await load().then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PgplayErrors);
  return (e as PgplayErrors).errors.map((x) => x.format());
}

describe('the parse cache of the user files', () => {
  it('an unchanged inventory is loaded from the cache: same inventory, no parse; kept 0600 in a 0700 directory', async () => {
    const first = await loadInventory(inventoryFile, cache);
    expect((await readdir(cache.dir)).length).toBe(1);
    const entry = join(cache.dir, (await readdir(cache.dir))[0]!);
    expect((await stat(entry)).mode & 0o777).toBe(0o600);
    expect((await stat(cache.dir)).mode & 0o777).toBe(0o700);
    let second: Awaited<ReturnType<typeof loadInventory>> | undefined;
    expect(await parses(async () => (second = await loadInventory(inventoryFile, cache)))).toBe(0);
    expect(second!.inventory).toEqual(first.inventory);
    expect(second!.inventory).toEqual((await loadInventory(inventoryFile)).inventory);
  });

  it('an unchanged playbook: no parse; the schema verdict is per included or not', async () => {
    const inventory = (await loadInventory(inventoryFile)).inventory;
    const first = await loadPlaybook(playbookFile, { actions: fakeActions, inventory, cache });
    let second: Awaited<ReturnType<typeof loadPlaybook>> | undefined;
    expect(await parses(async () => (second = await loadPlaybook(playbookFile, { actions: fakeActions, inventory, cache })))).toBe(0);
    expect(second!.playbook).toEqual(first.playbook);
    const hit = await readCachedParse(cache, playbookFile, await readFile(playbookFile, 'utf8'));
    expect([...hit!.passed].map((p) => p.replace(/:.*/, ''))).toEqual(['playbook']);
    await loadPlaybook(playbookFile, { actions: fakeActions, inventory, cache, included: true });
    const both = await readCachedParse(cache, playbookFile, await readFile(playbookFile, 'utf8'));
    expect([...both!.passed].map((p) => p.replace(/:.*/, ''))).toEqual(['included-playbook', 'playbook']);
  });

  it('a playbook that declares a report reads the playbooks it includes through the cache as well', async () => {
    const inventory = (await loadInventory(inventoryFile)).inventory;
    const included = join(dir, 'registering.yml');
    await writeFile(included, ['name: registering', 'steps:', '  - id: promote-ish', '    command: { argv: ["true"] }', '    register: promotion', ''].join('\n'));
    const declaring = join(dir, 'declares-report.yml');
    const text = ['name: declares-report', 'report:', '  kind: promotion', '  outputs: { promoted: promotion }', 'steps:', '  - id: inc', '    hosts: db1', '    include: { playbook: registering.yml }', ''].join('\n');
    await writeFile(declaring, text);
    // A run loads both, the include when its step comes; from then on the cache knows them.
    await loadPlaybook(declaring, { actions: fakeActions, inventory, cache });
    await loadPlaybook(included, { actions: fakeActions, inventory, cache, included: true });
    expect(await parses(() => loadPlaybook(declaring, { actions: fakeActions, inventory, cache }))).toBe(0);
    // The names still come from the include: a misspelt one is refused, the include's name offered.
    await writeFile(declaring, text.replace('promoted: promotion', 'promoted: promoton'));
    expect((await failure(() => loadPlaybook(declaring, { actions: fakeActions, inventory, cache }))).join('\n')).toMatch(
      /declares-report\.yml:4:\d+: report output promoted: no step registers "promoton"; did you mean "promotion"\?/,
    );
  });

  it('a changed file is parsed and validated again, and its entry replaced', async () => {
    const text = await readFile(inventoryFile, 'utf8');
    await writeFile(inventoryFile, `${text}\n# changed\n`);
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(1);
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(0);
    // A schema error in the changed text is found: the cached verdict was for the old text.
    await writeFile(inventoryFile, text.replace(/^cluster:/m, 'clustr:'));
    expect((await failure(() => loadInventory(inventoryFile, cache))).join('\n')).toMatch(/inventory\.yml:\d+:\d+.*unknown key "clustr"/);
    await writeFile(inventoryFile, text);
  });

  it('a corrupted, foreign or other build\'s entry is ignored (parsed again), and a corrupted one rewritten', async () => {
    await loadInventory(inventoryFile, cache);
    const text = await readFile(inventoryFile, 'utf8');
    const entries = await readdir(cache.dir);
    const entryFor = async () => {
      for (const name of entries) {
        const body = await readFile(join(cache.dir, name), 'utf8').catch(() => '');
        if (body.includes('"inventory"')) return join(cache.dir, name);
      }
      throw new Error('no inventory entry');
    };
    const entry = await entryFor();
    const good = await readFile(entry, 'utf8');

    await writeFile(entry, good.slice(0, good.length / 2));
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(1);
    expect(await readFile(entry, 'utf8')).toBe(good);

    // An entry others can read or write is not ours to trust.
    await chmod(entry, 0o644);
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(1);
    await chmod(entry, 0o600);

    // Another build, or data claimed for another text: never used.
    const other = JSON.parse(good) as { build: string; sha256: string; data: { cluster: string } };
    await writeFile(entry, JSON.stringify({ ...other, build: 'another-build' }), { mode: 0o600 });
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(1);
    await writeFile(entry, JSON.stringify({ ...other, data: { ...other.data, cluster: 'forged' } }), { mode: 0o600 });
    expect(await readCachedParse(cache, inventoryFile, text)).toMatchObject({ data: { cluster: 'forged' } });
    expect(await readCachedParse(cache, inventoryFile, `${text} `)).toBeUndefined();
    expect(await readCachedParse(parseCacheIn(join(dir, 'state'), 'another-build'), inventoryFile, text)).toBeUndefined();
    // Unstamped code (src/, a plain tsc) neither reads nor writes a cache.
    expect(await readCachedParse(parseCacheIn(join(dir, 'state'), 'unstamped'), inventoryFile, text)).toBeUndefined();
    await writeFile(entry, good, { mode: 0o600 });
    expect(await parses(() => loadInventory(inventoryFile, cache))).toBe(0);
  });

  it('an error in a cached playbook is placed at file:line:col exactly as without the cache', async () => {
    const inventory = (await loadInventory(inventoryFile)).inventory;
    await loadPlaybook(playbookFile, { actions: fakeActions, inventory, cache, templateDirs: [join(FIXTURES, 'templates')] });
    // The same (cached, schema-valid) text where its template is not found: a meaning error, placed by parsing the text then.
    const elsewhere = { actions: fakeActions, inventory, templateDirs: [dir] };
    let cachedErrors: string[] = [];
    expect(await parses(async () => (cachedErrors = await failure(() => loadPlaybook(playbookFile, { ...elsewhere, cache }))))).toBe(1);
    const plainErrors = await failure(() => loadPlaybook(playbookFile, elsewhere));
    expect(cachedErrors).toEqual(plainErrors);
    expect(cachedErrors).toEqual([expect.stringMatching(/nightly-backup\.yml:11:22: template "postgresql\.conf\.hbs" not found/)]);
  });
});
