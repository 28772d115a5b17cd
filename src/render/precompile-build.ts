/**
 * `npm run build`: compile the shipped templates and the templated strings of the shipped playbooks
 * into dist/precompiled/handlebars.cjs (see precompiled.ts). A text that the renderer would refuse
 * (syntax, block parameters, blocked keys) is left out, so it is refused at run time as before.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import type { HbNode } from './ast.js';
import { checkTree, singlePath } from './checks.js';
import { compileAst, handlebarsCompiler } from './handlebars-lib.js';
import { textKey } from './precompiled.js';

function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name), keep) : keep(e.name) ? [join(dir, e.name)] : []));
}

function templatedStrings(value: unknown, out: string[]): void {
  if (typeof value === 'string') {
    if (value.includes('{{')) out.push(value);
  } else if (Array.isArray(value)) {
    for (const item of value) templatedStrings(item, out);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) templatedStrings(item, out);
  }
}

/** The texts a run of the shipped procedures renders: template files and playbook strings with `{{`. */
export function shippedTexts(packageRoot: string): string[] {
  const texts = filesUnder(join(packageRoot, 'templates'), () => true).map((f) => readFileSync(f, 'utf8'));
  for (const file of filesUnder(join(packageRoot, 'playbooks'), (n) => n.endsWith('.yml') || n.endsWith('.yaml'))) {
    try {
      templatedStrings(parse(readFileSync(file, 'utf8'), { merge: true }), texts);
    } catch {
      /* a playbook the loader refuses is refused at run time */
    }
  }
  return [...new Set(texts)];
}

/** The generated module's text: one spec per text the renderer accepts, keyed by the text's hash. */
export function precompiledModule(texts: string[]): { source: string; count: number } {
  const hb = handlebarsCompiler();
  const entries: string[] = [];
  for (const text of texts) {
    let ast: HbNode;
    try {
      ast = hb.parse(text) as unknown as HbNode;
      checkTree(ast, 'precompile');
      const spec = compileAst(ast as unknown as hbs.AST.Program, true);
      entries.push(`${JSON.stringify(textKey(text))}: { spec: ${spec}, single: ${JSON.stringify(singlePath(ast))} }`);
    } catch {
      /* refused at run time, with its message and position */
    }
  }
  const source =
    `// Written by the build (dist/app/build-validators.js): Handlebars specs of the shipped templates and playbook strings.\n` +
    `"use strict";\nexports.handlebars = ${JSON.stringify(hb.VERSION)};\nexports.texts = {\n${entries.join(',\n')}\n};\n`;
  return { source, count: entries.length };
}

/** Writes the module atomically: another process may be rendering while a build runs. */
export function writePrecompiled(file: string, packageRoot: string): string {
  const { source, count } = precompiledModule(shippedTexts(packageRoot));
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, source);
  renameSync(temp, file);
  return `precompiled ${count} templates and playbook strings to ${file}\n`;
}
