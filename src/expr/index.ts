/**
 * The condition language of playbooks (`when`, `until`, `changed_when`, `failed_when`, assert `that`).
 * A hand-written parser and tree walker: no eval, no Function, and only plain data is reachable.
 *
 * Precedence, loosest first: `or`/`||`, `and`/`&&`, `not`, comparisons (== != < <= > >= in, not in),
 * `+ -`, `* / %`, unary `!` and `-`, then `.key`, `[index]` and calls. `not` is loose as in Python
 * (`not a == b` is `not (a == b)`), `!` is tight as in JavaScript (`!a == b` is `(!a) == b`).
 *
 * Semantics worth knowing:
 * - Strict: an unknown variable or key is an error with a did-you-mean; defined(path) and
 *   default(path, fallback) are the lenient way to test optional data (default also replaces null).
 * - Numbers compare numerically, also against numeric strings (PostgreSQL returns bigint as text).
 * - Truthiness is Python's: false, null, 0, '', [] and {} are false. `and`/`or` return booleans.
 * - `a.0` and `a[0]` index lists; negative indexes count from the end.
 * - Unknown string escapes keep their backslash, so matches(x, '\d+') needs no doubling.
 */
import type { Expr, Node } from './ast.js';
import { Evaluator } from './evaluate.js';
import { parseExpression } from './parse.js';
import { truthy } from './values.js';

export type { Expr, Node } from './ast.js';
export { parseExpression } from './parse.js';
export { parseBytes, parseLsn, FUNCTION_NAMES } from './functions.js';
export { truthy, equals, compare } from './values.js';

export function evaluate(expr: string | Expr, scope: Record<string, unknown>): unknown {
  const parsed = typeof expr === 'string' ? parseExpression(expr) : expr;
  return new Evaluator(parsed, scope).run();
}

/** A YAML boolean (`when: false`) is taken as is; a string is evaluated and judged by truthiness. */
export function evaluateCondition(expr: string | boolean | Expr, scope: Record<string, unknown>): boolean {
  if (typeof expr === 'boolean') return expr;
  return truthy(evaluate(expr, scope));
}

/** Root variable names an expression reads, in order of first use (the engine checks them early). */
export function referencedNames(expr: string | Expr): string[] {
  return namesIn(expr, false);
}

/**
 * Every name an expression's paths use, in order of first use: the roots, the keys after a dot and the
 * string keys in brackets (`hosts[x].registered.done['rows']` uses hosts, x, registered, done, rows).
 */
export function referencedSegments(expr: string | Expr): string[] {
  return namesIn(expr, true);
}

function namesIn(expr: string | Expr, keys: boolean): string[] {
  const parsed = typeof expr === 'string' ? parseExpression(expr) : expr;
  const names: string[] = [];
  const add = (name: string) => {
    if (!names.includes(name)) names.push(name);
  };
  const walk = (node: Node): void => {
    switch (node.type) {
      case 'name':
        add(node.name);
        return;
      case 'literal':
        return;
      case 'list':
        node.items.forEach(walk);
        return;
      case 'member':
        walk(node.object);
        if (keys) add(node.key);
        return;
      case 'index':
        walk(node.object);
        if (keys && node.index.type === 'literal' && typeof node.index.value === 'string') add(node.index.value);
        else walk(node.index);
        return;
      case 'unary':
        walk(node.operand);
        return;
      case 'binary':
      case 'logical':
        walk(node.left);
        walk(node.right);
        return;
      case 'call':
        node.args.forEach(walk);
        return;
    }
  };
  walk(parsed.ast);
  return names;
}
