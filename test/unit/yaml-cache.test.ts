import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { PgplayErrors } from '../../src/core/errors.js';
import { loadYamlFile, parseYaml, yamlParseCount } from '../../src/load/yaml.js';
import { writeParsedYaml } from '../../src/load/yaml-cache-build.js';

const SHIPPED = ['playbooks/include/standby-build.yml', 'playbooks/pitr-drill.yml', 'playbooks/include/backup/pgbackrest/standby-restore.yml'];
let dir: string;
let cacheDir: string;
let playbooks: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-yaml-cache-'));
  cacheDir = join(dir, 'cache');
  playbooks = join(dir, 'playbooks');
  await mkdir(playbooks);
  writeParsedYaml(cacheDir, join(PACKAGE_ROOT, 'playbooks'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("the build's parse of the shipped playbooks", () => {
  it('a shipped playbook loads from the cache: same data, no YAML parse', async () => {
    for (const rel of SHIPPED) {
      const file = join(PACKAGE_ROOT, rel);
      const expected = parseYaml(await readFile(file, 'utf8'), file).data;
      const before = yamlParseCount();
      const doc = await loadYamlFile(file, cacheDir);
      expect(yamlParseCount() - before).toBe(0);
      expect(doc.data).toEqual(expected);
      expect(doc.file).toBe(file);
    }
  });

  it('each load gets its own copy of the data', async () => {
    const file = join(PACKAGE_ROOT, SHIPPED[0]!);
    const a = await loadYamlFile<{ steps: unknown[] }>(file, cacheDir);
    a.data.steps.length = 0;
    const b = await loadYamlFile<{ steps: unknown[] }>(file, cacheDir);
    expect(b.data.steps.length).toBeGreaterThan(0);
  });

  it('a cached document still places an error at file:line:col, by parsing its text then', async () => {
    const file = join(PACKAGE_ROOT, SHIPPED[0]!);
    const text = await readFile(file, 'utf8');
    const parsed = parseYaml<{ steps: unknown[] }>(text, file);
    const doc = await loadYamlFile<{ steps: unknown[] }>(file, cacheDir);
    const last = parsed.data.steps.length - 1;
    expect(doc.position(['steps', last, 'name'])).toEqual(parsed.position(['steps', last, 'name']));
    expect(doc.position(['steps', last, 'name']).line).toBeGreaterThan(1);
  });

  it('an edited or unknown playbook is parsed, and its errors are reported as before', async () => {
    const file = join(playbooks, 'edited.yml');
    const shipped = await readFile(join(PACKAGE_ROOT, SHIPPED[0]!), 'utf8');
    await writeFile(file, `${shipped}\n# edited\n`);
    let before = yamlParseCount();
    await loadYamlFile(file, cacheDir);
    expect(yamlParseCount() - before).toBe(1);

    await writeFile(file, 'steps:\n  - name: a\n  name: b\n   bad: [\n');
    before = yamlParseCount();
    const error = await loadYamlFile(file, cacheDir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PgplayErrors);
    expect(String((error as PgplayErrors).errors[0]!.position?.line)).toMatch(/^[0-9]+$/);
    expect(yamlParseCount() - before).toBe(1);
  });
});
