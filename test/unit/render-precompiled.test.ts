import Handlebars from 'handlebars';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { createRenderer } from '../../src/render/index.js';
import { shippedTexts, writePrecompiled } from '../../src/render/precompile-build.js';
import { precompiledFileName, textKey } from '../../src/render/precompiled.js';

/** Counts the template texts Handlebars parses: a precompiled text must not be parsed. */
function countParses(): { texts: string[]; restore(): void } {
  const texts: string[] = [];
  const original = Handlebars.parse.bind(Handlebars);
  const spy = vi.spyOn(Handlebars, 'parse').mockImplementation((input: string | hbs.AST.Program, options?: Handlebars.ParseOptions) => {
    if (typeof input === 'string') texts.push(input);
    return original(input as string, options);
  });
  return { texts, restore: () => spy.mockRestore() };
}

// Whitespace control and a block: the precompiled spec must render exactly what a runtime compile does.
const TEMPLATE = 'port = {{port}}\n{{#each hosts}}\nhost {{this}}\n{{/each}}\n  {{~! trimmed }}\nend\n';
let dir: string;
let shippedDir: string;
let sampleDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-render-precompiled-'));
  await writeFile(join(dir, 'conf.hbs'), TEMPLATE);
  sampleDir = join(dir, 'sample');
  expect(writePrecompiled(sampleDir, [TEMPLATE, '{{port}}', 'p={{port}}'])).toBe(3);
  shippedDir = join(dir, 'shipped');
  writePrecompiled(shippedDir, shippedTexts(PACKAGE_ROOT));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function templatedStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string' && value.includes('{{')) out.push(value);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) templatedStrings(v, out);
  return out;
}

describe('templates precompiled by the build', () => {
  it('a precompiled template and step string render as a compiled one, with nothing parsed or compiled', async () => {
    const compiled = createRenderer({ templateDirs: [dir], precompiled: false });
    const expected = [await compiled.renderFile('conf.hbs', { port: 5432, hosts: ['a', 'b'] }), compiled.renderString('p={{port}}', { port: 1 }, 's')];
    expect(expected).toEqual(['port = 5432\nhost a\nhost b\nend\n', 'p=1']);

    const parses = countParses();
    try {
      const renderer = createRenderer({ templateDirs: [dir], precompiled: sampleDir });
      expect(await renderer.renderFile('conf.hbs', { port: 5432, hosts: ['a', 'b'] })).toBe(expected[0]);
      expect(renderer.renderString('p={{port}}', { port: 1 }, 's')).toBe(expected[1]);
      // `{{ path }}` alone keeps the value's type, decided at build time without a syntax tree.
      expect(renderer.renderValue({ n: '{{port}}' }, { port: 7 }, 'v')).toEqual({ n: 7 });
      expect(renderer.stats).toEqual({ compiled: 0, precompiled: 3, hits: 0 });
      expect(parses.texts).toEqual([]);
    } finally {
      parses.restore();
    }
  });

  it('an edited template is not found by its old content and is compiled', async () => {
    const renderer = createRenderer({ templateDirs: [dir], precompiled: sampleDir });
    expect(renderer.renderString('p={{port}}!', { port: 2 }, 's')).toBe('p=2!');
    expect(renderer.stats).toEqual({ compiled: 1, precompiled: 0, hits: 0 });
  });

  it('an error in a precompiled template is still explained at its line and column', async () => {
    const renderer = createRenderer({ templateDirs: [dir], precompiled: sampleDir });
    await expect(renderer.renderFile('conf.hbs', { prot: 5432, hosts: [] })).rejects.toThrow(/unknown variable "port".*conf\.hbs.*line 1, column 10.*did you mean "prot"/s);
    expect(() => renderer.renderValue('{{port}}', { prot: 1 }, 'v')).toThrow(/unknown variable "port".*did you mean "prot"/s);
    expect(renderer.stats.compiled).toBe(0);
  });

  it('a missing module, or one of another Handlebars, compiles the text', async () => {
    const foreign = join(dir, 'foreign');
    writePrecompiled(foreign, ['p={{port}}']);
    await writeFile(join(foreign, precompiledFileName(textKey('p={{port}}'))), 'exports.handlebars = "0.0.1"; exports.single = null; exports.spec = {};');
    for (const where of [foreign, join(dir, 'absent')]) {
      const renderer = createRenderer({ templateDirs: [dir], precompiled: where });
      expect(renderer.renderString('p={{port}}', { port: 3 }, 's')).toBe('p=3');
      expect(renderer.stats).toEqual({ compiled: 1, precompiled: 0, hits: 0 });
    }
  });

  it('every shipped template and every templated string of standby-build and pitr-drill is precompiled', () => {
    const texts = [
      ...['pgbackrest.conf.hbs', 'postgresql.conf.hbs', 'recovery-settings.conf.hbs', 'pg_hba.conf.hbs'].map((t) => readFileSync(join(PACKAGE_ROOT, 'templates', t), 'utf8')),
      ...['playbooks/include/standby-build.yml', 'playbooks/pitr-drill.yml', 'playbooks/include/backup/pgbackrest/standby-restore.yml'].flatMap((f) =>
        templatedStrings(parse(readFileSync(join(PACKAGE_ROOT, f), 'utf8'), { merge: true })),
      ),
    ];
    expect(texts.length).toBeGreaterThan(20);
    const renderer = createRenderer({ templateDirs: [], precompiled: shippedDir });
    for (const text of texts) {
      try {
        renderer.renderString(text, {}, 'shipped');
      } catch {
        /* no context here: only whether the text had to be compiled counts */
      }
    }
    expect(renderer.stats.compiled).toBe(0);
    expect(renderer.stats.precompiled).toBe(new Set(texts).size);
  });
});
