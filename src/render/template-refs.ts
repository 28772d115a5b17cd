import { isPathNode, walk, type HbNode } from './ast.js';
import { HELPER_NAMES } from './helpers.js';

/**
 * What a template reads, from its syntax alone (nothing is rendered): the root names of its paths,
 * every path segment, and the string literals given to helpers (`get 'x.y'`, `lookup h 'registered'`),
 * split at dots. Computed from the parsed tree, at run time (engine/template-refs.ts) or by the build
 * for the shipped texts (precompile-build.ts), so a run of shipped playbooks need not load the parser.
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

/** TemplateRefs as the build writes them into a precompiled module: arrays instead of sets. */
export type TemplateRefsJson = { [K in keyof TemplateRefs]: string[] };

export const REF_KINDS = ['roots', 'segments', 'literalHeads', 'params'] as const;

export function emptyRefs(): TemplateRefs {
  return { roots: new Set(), segments: new Set(), literalHeads: new Set(), params: new Set() };
}

const HELPERS = new Set(HELPER_NAMES);

/** The references of one parsed template. */
export function refsOfTree(ast: HbNode): TemplateRefs {
  const refs = emptyRefs();
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
  return refs;
}
