import type { HbNode } from '../render/ast.js';
import { handlebarsCompiler } from '../render/handlebars-lib.js';
import { findPrecompiledRefs } from '../render/precompiled.js';
import { emptyRefs, REF_KINDS, refsOfTree, type TemplateRefs } from '../render/template-refs.js';

export type { TemplateRefs };

/**
 * What the templates in a value read, from their syntax alone (nothing is rendered): the root names of
 * their paths, every path segment, and the string literals given to helpers (`get 'x.y'`, `lookup h
 * 'registered'`), split at dots. The run's pre-flight (preflight-render.ts) decides with it whether a
 * value can be rendered before the first step or depends on what steps register on the way.
 */
export function templateRefs(value: unknown): TemplateRefs {
  const refs = emptyRefs();
  for (const text of templateStrings(value)) {
    const own = refsOfText(text);
    for (const key of REF_KINDS) for (const name of own[key]) refs[key].add(name);
  }
  return refs;
}

// The same strings come back for every host and every include of a run: each text is parsed once.
const refsByText = new Map<string, TemplateRefs>();

function refsOfText(text: string): TemplateRefs {
  let refs = refsByText.get(text);
  if (!refs) {
    // A shipped text's references were read by the build: the parser (Handlebars' compiler) stays unloaded.
    refs = findPrecompiledRefs(text) ?? parsedRefs(text);
    refsByText.set(text, refs);
  }
  return refs;
}

function* templateStrings(value: unknown): Generator<string> {
  if (typeof value === 'string') {
    if (value.includes('{{')) yield value;
  } else if (Array.isArray(value)) {
    for (const item of value) yield* templateStrings(item);
  } else if (value !== null && typeof value === 'object') {
    for (const item of Object.values(value)) yield* templateStrings(item);
  }
}

function parsedRefs(text: string): TemplateRefs {
  let ast: HbNode;
  try {
    ast = handlebarsCompiler().parse(text) as unknown as HbNode;
  } catch {
    // A syntax error is reported by the render that follows, with its line and column.
    return emptyRefs();
  }
  return refsOfTree(ast);
}
