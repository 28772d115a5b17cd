import { isPathNode, walk, type HbNode } from '../render/ast.js';
import { handlebarsCompiler } from '../render/handlebars-lib.js';
import { HELPER_NAMES } from '../render/helpers.js';

/**
 * What the templates in a value read, from their syntax alone (nothing is rendered): the root names of
 * their paths, every path segment, and the string literals given to helpers (`get 'x.y'`, `lookup h
 * 'registered'`), split at dots. The run's pre-flight (preflight-render.ts) decides with it whether a
 * value can be rendered before the first step or depends on what steps register on the way.
 */
export interface TemplateRefs {
  /** Names read at the top of the context: `params` of {{params.host}}, `restore_target` of {{restore_target.set}}. */
  roots: Set<string>;
  /** Every segment of every path and of every string literal: `registered`, `facts`, ... wherever they appear. */
  segments: Set<string>;
  /** The first dotted segment of every string literal: `restore_target` of `get 'restore_target.set'` or `lookup r 'restore_target'`. */
  literalHeads: Set<string>;
  /** `params.<name>` read anywhere (paths from the top, `@root.params.x`, literals 'params.x'). */
  params: Set<string>;
}

const HELPERS = new Set(HELPER_NAMES);

export function templateRefs(value: unknown): TemplateRefs {
  const refs: TemplateRefs = { roots: new Set(), segments: new Set(), literalHeads: new Set(), params: new Set() };
  for (const text of templateStrings(value)) {
    const own = refsOfText(text);
    for (const key of ['roots', 'segments', 'literalHeads', 'params'] as const) for (const name of own[key]) refs[key].add(name);
  }
  return refs;
}

// The same strings come back for every host and every include of a run: each text is parsed once.
const refsByText = new Map<string, TemplateRefs>();

function refsOfText(text: string): TemplateRefs {
  let refs = refsByText.get(text);
  if (!refs) {
    refs = { roots: new Set(), segments: new Set(), literalHeads: new Set(), params: new Set() };
    addRefs(text, refs);
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

function addRefs(text: string, refs: TemplateRefs): void {
  let ast: HbNode;
  try {
    ast = handlebarsCompiler().parse(text) as unknown as HbNode;
  } catch {
    // A syntax error is reported by the render that follows, with its line and column.
    return;
  }
  for (const { node, frames, owner } of walk(ast)) {
    if (node.type === 'StringLiteral') {
      const parts = String(node.value).split('.');
      for (const p of parts) refs.segments.add(p);
      const top = parts[0] === '@root' ? parts.slice(1) : parts;
      if (top[0]) refs.literalHeads.add(top[0]);
      if (top[0] === 'params' && top[1]) refs.params.add(top[1]);
      continue;
    }
    if (!isPathNode(node)) continue;
    for (const p of node.parts) refs.segments.add(p);
    // The helper a mustache calls ({{eq a b}}, {{#if x}}) is not data.
    const isHelper = owner !== undefined && owner.path === node && node.parts.length === 1 && HELPERS.has(node.parts[0]!);
    if (isHelper) continue;
    let parts: string[];
    if (node.data) {
      if (node.parts[0] !== 'root') continue;
      parts = node.parts.slice(1);
    } else if (node.depth >= frames.length) {
      parts = node.parts;
    } else {
      // Relative to an {{#each}}/{{#with}} item: what it reads depends on the item, counted in segments.
      continue;
    }
    if (parts[0] === undefined) continue;
    refs.roots.add(parts[0]);
    if (parts[0] === 'params' && parts[1]) refs.params.add(parts[1]);
  }
}
