/**
 * `npm run build`: compile the shipped templates and the templated strings of the shipped playbooks
 * into dist/precompiled/handlebars/, one module per text (see precompiled.ts). A text that the renderer would refuse
 * (syntax, block parameters, blocked keys) is left out, so it is refused at run time as before.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { HbNode } from './ast.js';
import { checkTree, singlePath } from './checks.js';
import { compileAst, handlebarsCompiler } from './handlebars-lib.js';
import { precompiledFileName, textKey } from './precompiled.js';
import { REF_KINDS, refsOfTree, type TemplateRefsJson } from './template-refs.js';

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

/** The generated module of one text, or undefined for a text the renderer refuses. */
export function precompiledModule(text: string): string | undefined {
  const hb = handlebarsCompiler();
  try {
    const ast = hb.parse(text) as unknown as HbNode;
    checkTree(ast, 'precompile');
    // Read before compiling, from the tree as the parse left it (the run's parsedRefs reads the same).
    const found = refsOfTree(ast);
    const refs = Object.fromEntries(REF_KINDS.map((kind) => [kind, [...found[kind]]])) as TemplateRefsJson;
    const spec = compileAst(ast as unknown as hbs.AST.Program, true);
    return (
      `// Written by the build (dist/app/build-validators.js): the Handlebars spec of one shipped template or playbook string.\n` +
      `"use strict";\nexports.handlebars = ${JSON.stringify(hb.VERSION)};\nexports.single = ${JSON.stringify(singlePath(ast))};\nexports.refs = ${JSON.stringify(refs)};\nexports.spec = ${spec};\n`
    );
  } catch {
    return undefined; // refused at run time, with its message and position
  }
}

/**
 * Writes a module per text into `dir`, emptied first. Each file is written atomically: another process
 * may be rendering while a build runs (a file it misses is compiled).
 */
export function writePrecompiled(dir: string, texts: string[]): number {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let count = 0;
  for (const text of texts) {
    const source = precompiledModule(text);
    if (source === undefined) continue;
    const file = join(dir, precompiledFileName(textKey(text)));
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, source);
    renameSync(temp, file);
    count++;
  }
  return count;
}
