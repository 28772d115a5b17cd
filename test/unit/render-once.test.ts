import Handlebars from 'handlebars';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRenderer } from '../../src/render/index.js';

/** Counts the template texts Handlebars parses (the renderer parses with the library's own parse). */
function countParses(): { texts: string[]; restore(): void } {
  const texts: string[] = [];
  const parse = Handlebars.parse.bind(Handlebars);
  const spy = vi.spyOn(Handlebars, 'parse').mockImplementation((input: string | hbs.AST.Program, options?: Handlebars.ParseOptions) => {
    if (typeof input === 'string') texts.push(input);
    return parse(input as string, options);
  });
  return { texts, restore: () => spy.mockRestore() };
}

// Standalone block lines and a ~ trim: output that whitespace processing applied twice would change.
const TEMPLATE = 'port = {{port}}\n{{#each hosts}}\nhost {{this}}\n{{/each}}\n  {{~! trimmed }}\nend\n';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-render-once-'));
  await writeFile(join(dir, 'conf.hbs'), TEMPLATE);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('templates are parsed once per run', () => {
  it('a template rendered for check and apply on several hosts is parsed once, and renders as before', async () => {
    // What Handlebars makes of the text parsed and compiled in one go: whitespace control applied once.
    const expected = [5432, 5433].map((port) => Handlebars.create().compile(TEMPLATE, { strict: true, noEscape: true })({ port, hosts: ['a', 'b'] }));
    expect(expected[0]).toBe('port = 5432\nhost a\nhost b\nend\n');
    const parses = countParses();
    try {
      const renderer = createRenderer({ templateDirs: [dir], precompiled: false });
      const outputs: string[] = [];
      // Two hosts, check then apply on each: four renders of one template file, plus a step value.
      for (const port of [5432, 5433]) {
        for (let pass = 0; pass < 2; pass++) outputs.push(await renderer.renderFile('conf.hbs', { port, hosts: ['a', 'b'] }));
        outputs.push(renderer.renderString('{{port}}', { port }, 'step value'));
      }
      expect(outputs).toEqual([expected[0], expected[0], '5432', expected[1], expected[1], '5433']);
      expect(parses.texts).toEqual([expect.stringContaining('port = {{port}}'), '{{port}}']);
      expect(renderer.stats).toEqual({ compiled: 2, precompiled: 0, hits: 4 });
    } finally {
      parses.restore();
    }
  });

  it('a template parsed once still explains an unknown variable by its position', async () => {
    const renderer = createRenderer({ templateDirs: [dir] });
    await expect(renderer.renderFile('conf.hbs', { prot: 5432, hosts: [] })).rejects.toThrow(/unknown variable "port".*conf\.hbs.*line 1, column 10.*did you mean "prot"/s);
  });
});
