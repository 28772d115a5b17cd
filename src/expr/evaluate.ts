import { BLOCKED_KEYS, type Expr, type Node } from './ast.js';
import { exprError } from './errors.js';
import { ArgumentError, callFunction } from './functions.js';
import { didYouMean, listNames } from './suggest.js';
import { compare, contains, describe, equals, truthy, typeName } from './values.js';

/** What a lenient lookup (inside defined()/default()) yields for a path that does not exist. */
const MISSING: unique symbol = Symbol('missing');
type Looked = unknown | typeof MISSING;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

function keyText(key: string | number): string {
  return typeof key === 'number' || IDENT.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

export class Evaluator {
  constructor(
    private readonly expr: Expr,
    private readonly scope: Record<string, unknown>,
  ) {}

  private text(node: Node): string {
    return this.expr.source.slice(node.start, node.end);
  }

  private fail(offset: number, what: string, extra?: Parameters<typeof exprError>[3]): Error {
    return exprError(this.expr.source, offset, what, extra);
  }

  run(): unknown {
    return this.compute(this.expr.ast);
  }

  private compute(node: Node): unknown {
    switch (node.type) {
      case 'literal':
        return node.value;
      case 'list':
        return node.items.map((item) => this.compute(item));
      case 'name':
      case 'member':
      case 'index':
        return this.lookup(node, false);
      case 'unary': {
        const v = this.compute(node.operand);
        if (node.op === '-') {
          if (typeof v !== 'number') throw this.fail(node.operand.start, `cannot negate ${typeName(v)} ${describe(v)}`, { hint: 'convert with int() or float()' });
          return -v;
        }
        return !truthy(v);
      }
      case 'logical': {
        const left = truthy(this.compute(node.left));
        if (node.op === 'and') return left ? truthy(this.compute(node.right)) : false;
        return left ? true : truthy(this.compute(node.right));
      }
      case 'binary':
        return this.binary(node);
      case 'call':
        return this.call(node);
    }
  }

  private binary(node: Extract<Node, { type: 'binary' }>): unknown {
    const a = this.compute(node.left);
    const b = this.compute(node.right);
    const bad = (verb: string) =>
      this.fail(node.opStart, `cannot ${verb} ${typeName(a)} ${describe(a)} and ${typeName(b)} ${describe(b)}`, {
        hint: 'convert with int(), float() or string()',
      });
    switch (node.op) {
      case '+':
        if (typeof a === 'number' && typeof b === 'number') return a + b;
        if (typeof a === 'string' && typeof b === 'string') return a + b;
        if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
        throw bad('add');
      case '-':
      case '*':
      case '/':
      case '%': {
        if (typeof a !== 'number' || typeof b !== 'number') {
          throw bad({ '-': 'subtract', '*': 'multiply', '/': 'divide', '%': 'take the remainder of' }[node.op]);
        }
        if ((node.op === '/' || node.op === '%') && b === 0) throw this.fail(node.opStart, 'division by zero');
        if (node.op === '-') return a - b;
        if (node.op === '*') return a * b;
        if (node.op === '/') return a / b;
        return a % b;
      }
      case '==':
        return equals(a, b);
      case '!=':
        return !equals(a, b);
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const c = compare(a, b);
        if (c === undefined) {
          throw this.fail(node.opStart, `cannot compare ${typeName(a)} ${describe(a)} with ${typeName(b)} ${describe(b)}`, {
            hint: 'order compares numbers with numbers and strings with strings',
          });
        }
        if (node.op === '<') return c < 0;
        if (node.op === '<=') return c <= 0;
        if (node.op === '>') return c > 0;
        return c >= 0;
      }
      case 'in':
      case 'not in': {
        const r = contains(b, a);
        if (r === undefined) {
          throw this.fail(node.opStart, `cannot look for ${typeName(a)} ${describe(a)} in ${typeName(b)} ${describe(b)}`, {
            expected: 'a list, a string (substring) or an object (key) on the right of "in"',
          });
        }
        return node.op === 'in' ? r : !r;
      }
    }
  }

  private call(node: Extract<Node, { type: 'call' }>): unknown {
    if (node.name === 'defined') return this.lookup(node.args[0]!, true) !== MISSING;
    if (node.name === 'default') {
      const v = this.lookup(node.args[0]!, true);
      return v === MISSING || v === null || v === undefined ? this.compute(node.args[1]!) : v;
    }
    const args = node.args.map((a) => this.compute(a));
    try {
      return callFunction(node.name, args);
    } catch (e) {
      if (e instanceof ArgumentError) throw this.fail(node.args[e.argIndex]!.start, e.message, { hint: e.hint });
      throw e;
    }
  }

  /**
   * Resolves a path strictly (an unknown name or key is an error naming the path as written and the
   * nearest existing key) or leniently (MISSING instead of an error) inside defined()/default().
   */
  private lookup(node: Node, lenient: boolean): Looked {
    if (node.type === 'name') {
      if (Object.hasOwn(this.scope, node.name)) return this.scope[node.name];
      if (lenient) return MISSING;
      const names = Object.keys(this.scope);
      throw this.fail(node.start, `unknown variable "${node.name}"`, {
        suggestion: didYouMean(node.name, names),
        expected: listNames(names),
      });
    }
    if (node.type !== 'member' && node.type !== 'index') return this.compute(node);

    const parent = this.lookup(node.object, lenient);
    if (parent === MISSING) return MISSING;
    let key: string | number;
    let keyOffset: number;
    if (node.type === 'member') {
      key = /^\d+$/.test(node.key) ? Number(node.key) : node.key;
      keyOffset = node.keyStart;
    } else {
      const k = this.compute(node.index);
      if (typeof k !== 'string' && typeof k !== 'number') {
        throw this.fail(node.index.start, `an index must be a string or a number, got ${typeName(k)} ${describe(k)}`);
      }
      key = k;
      keyOffset = node.index.start;
    }
    if (typeof key === 'string' && BLOCKED_KEYS.has(key)) {
      throw this.fail(keyOffset, `access to "${key}" is not allowed`, { hint: 'expressions reach plain data only' });
    }
    const parentText = this.text(node.object);

    if (Array.isArray(parent)) {
      if (typeof key !== 'number' || !Number.isInteger(key)) {
        if (lenient) return MISSING;
        throw this.fail(keyOffset, `"${parentText}" is a list; ${describe(key)} is not an index`, { expected: 'an integer index' });
      }
      const i = key < 0 ? parent.length + key : key;
      if (i >= 0 && i < parent.length) return parent[i];
      if (lenient) return MISSING;
      throw this.fail(keyOffset, `index ${key} is out of range for "${parentText}" (a list of ${parent.length} item${parent.length === 1 ? '' : 's'})`);
    }
    if (typeof parent === 'object' && parent !== null) {
      const k = String(key);
      if (Object.hasOwn(parent, k)) return (parent as Record<string, unknown>)[k];
      if (lenient) return MISSING;
      const keys = Object.keys(parent);
      const near = didYouMean(k, keys);
      // `hosts.db-1` parses as `hosts.db - 1`; point at the bracket form when such a key exists.
      const dashed = this.expr.source[node.end] === '-' ? keys.find((key) => key.startsWith(`${k}-`)) : undefined;
      throw this.fail(keyOffset, `unknown variable "${this.text(node)}"`, {
        suggestion: near === undefined ? undefined : parentText + keyText(near),
        expected: `a key of ${parentText}: ${listNames(keys)}`,
        hint: dashed === undefined ? undefined : `write ${parentText}${keyText(dashed)} for a key with a dash`,
      });
    }
    if (lenient) return MISSING;
    throw this.fail(keyOffset, `cannot read ${describe(key)} of "${parentText}", which is ${typeName(parent)} ${describe(parent)}`);
  }
}
