/**
 * What the renderer decides from a template's syntax tree alone, at run time or at build time for a
 * precompiled text (precompiled.ts): the refusals, and whether the text is exactly one `{{ path }}`.
 */
import { PgplayError } from '../core/errors.js';
import { BLOCKED_KEYS } from '../expr/ast.js';
import { isPathNode, walk, type HbNode, type HbPath } from './ast.js';
import { HELPER_NAMES } from './helpers.js';
import { where } from './syntax.js';

const helperNames = new Set(HELPER_NAMES);

/** Refuses block parameters and blocked keys (constructor, __proto__, ...) anywhere in the tree. */
export function checkTree(ast: HbNode, name: string): void {
  for (const { node } of walk(ast)) {
    const blockParams = (node.program as HbNode | undefined)?.blockParams as string[] | undefined;
    if (node.type === 'BlockStatement' && blockParams && blockParams.length > 0) {
      // Handlebars never checks paths through block params, even in strict mode: `{{h.adress}}`
      // would silently render nothing. Refusing them keeps every lookup strict.
      throw new PgplayError({
        code: 'RENDER',
        message: `block parameters (as |${blockParams.join(' ')}|) are not supported ${where(name, node.loc.start.line, node.loc.start.column + 1)}`,
        hint: 'inside {{#each}} read the item with this.key, outer values with ../key or @root.key, and the position with @index or @key',
      });
    }
    if (isPathNode(node)) {
      const blocked = node.parts.find((p) => BLOCKED_KEYS.has(p));
      if (blocked) {
        throw new PgplayError({
          code: 'RENDER',
          message: `access to "${blocked}" is not allowed ${where(name, node.loc.start.line, node.loc.start.column + 1)}`,
          hint: 'templates reach plain data only',
        });
      }
    }
  }
}

/**
 * The path of a text that is exactly `{{ path }}` (no helper, no arguments, not `../`, no @data but
 * @root): renderValue returns the value at that path unchanged. Null for any other text.
 */
export function singlePath(ast: HbNode): HbPath | null {
  const body = ast.body as HbNode[];
  if (body.length !== 1 || body[0]!.type !== 'MustacheStatement') return null;
  const mustache = body[0]!;
  const p = mustache.path as HbNode;
  if (!isPathNode(p) || (mustache.params as unknown[]).length > 0 || asPairs(mustache.hash).length > 0) return null;
  if (p.parts.length === 1 && helperNames.has(p.parts[0]!)) return null;
  if (p.depth > 0 || (p.data && p.parts[0] !== 'root')) return null;
  return p;
}

export function asPairs(hash: unknown): unknown[] {
  return hash && typeof hash === 'object' && Array.isArray((hash as { pairs?: unknown[] }).pairs) ? (hash as { pairs: unknown[] }).pairs : [];
}
