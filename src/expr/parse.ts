import { BLOCKED_KEYS, isPath, type BinaryOp, type Expr, type Node } from './ast.js';
import { exprError } from './errors.js';
import { FUNCTION_NAMES, functionArity } from './functions.js';
import { didYouMean } from './suggest.js';

type TokenKind = 'number' | 'string' | 'ident' | 'op' | 'eof';
interface Token {
  kind: TokenKind;
  text: string; // operator or identifier text; the decoded value for strings
  value?: number | string;
  start: number;
  end: number;
}

const MAX_DEPTH = 64;
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false', 'null']);
const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '+', '-', '*', '/', '%', '(', ')', '[', ']', ',', '.'];
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"' };

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const start = i;
    const afterDot = tokens.length > 0 && tokens[tokens.length - 1]!.text === '.' && tokens[tokens.length - 1]!.kind === 'op';
    if (/[0-9]/.test(ch)) {
      // After a dot only an integer can follow (`rows.0.count`), so `a.0.1` is two keys, not 0.1.
      const re = afterDot ? /[0-9]+/y : /[0-9]+(?:\.[0-9]+)?/y;
      re.lastIndex = i;
      const m = re.exec(source)!;
      i += m[0].length;
      if (/[A-Za-z_]/.test(source[i] ?? '')) {
        throw exprError(source, start, `invalid number "${source.slice(start, i + 1)}"`, {
          hint: "sizes are written as strings through bytes(), e.g. bytes('16MB')",
        });
      }
      tokens.push({ kind: 'number', text: m[0], value: Number(m[0]), start, end: i });
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const re = /[A-Za-z_][A-Za-z0-9_]*/y;
      re.lastIndex = i;
      const m = re.exec(source)!;
      i += m[0].length;
      tokens.push({ kind: 'ident', text: m[0], start, end: i });
      continue;
    }
    if (ch === "'" || ch === '"') {
      i++;
      let value = '';
      for (;;) {
        if (i >= source.length) throw exprError(source, start, 'unterminated string', { expected: `a closing ${ch}` });
        const c = source[i]!;
        if (c === ch) {
          i++;
          break;
        }
        if (c === '\\' && i + 1 < source.length) {
          const next = source[i + 1]!;
          if (next === 'u' && /^[0-9A-Fa-f]{4}$/.test(source.slice(i + 2, i + 6))) {
            value += String.fromCharCode(parseInt(source.slice(i + 2, i + 6), 16));
            i += 6;
          } else if (ESCAPES[next] !== undefined) {
            value += ESCAPES[next];
            i += 2;
          } else {
            // Unknown escapes keep their backslash, so regexes like '\d+' work without doubling.
            value += c + next;
            i += 2;
          }
          continue;
        }
        value += c;
        i++;
      }
      tokens.push({ kind: 'string', text: source.slice(start, i), value, start, end: i });
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i));
    if (op) {
      i += op.length;
      if ((op === '==' || op === '!=') && source[i] === '=') {
        throw exprError(source, start, `unexpected "${op}="`, { expected: op, hint: `write ${op}; there is no ${op}=` });
      }
      tokens.push({ kind: 'op', text: op, start, end: i });
      continue;
    }
    if (ch === '=') {
      throw exprError(source, start, 'unexpected "="', { expected: 'an operator such as ==', hint: 'compare with ==' });
    }
    if (ch === '{') {
      const inner = /^\s*\{\{\s*(.*?)\s*\}\}\s*$/s.exec(source)?.[1] ?? 'facts.in_recovery';
      throw exprError(source, start, 'unexpected "{"', {
        hint: `conditions are expressions, not templates: write \`${inner}\` instead of \`{{ ${inner} }}\``,
      });
    }
    if (ch === '|') {
      throw exprError(source, start, 'unexpected character "|"', {
        hint: 'there are no filters; call functions instead: length(x), not x | length',
      });
    }
    throw exprError(source, start, `unexpected character "${ch}"`);
  }
  tokens.push({ kind: 'eof', text: '', start: source.length, end: source.length });
  return tokens;
}

function describeToken(t: Token): string {
  if (t.kind === 'eof') return 'the end of the expression';
  return `"${t.text}"`;
}

class Parser {
  private pos = 0;
  constructor(
    private readonly source: string,
    private readonly tokens: Token[],
  ) {}

  parse(): Node {
    if (this.peek().kind === 'eof') throw this.fail('an expression');
    const node = this.parseOr();
    if (this.peek().kind !== 'eof') throw this.fail('an operator or the end of the expression');
    return node;
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }
  private isOp(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'op' && t.text === text;
  }
  private isWord(text: string, offset = 0): boolean {
    const t = this.peek(offset);
    return t.kind === 'ident' && t.text === text;
  }
  private expectOp(text: string, what = `"${text}"`): Token {
    if (!this.isOp(text)) throw this.fail(what);
    return this.next();
  }
  private fail(expected: string): Error {
    const t = this.peek();
    let hint: string | undefined;
    if (t.kind === 'ident' && t.text === 'is') hint = 'write defined(x) instead of `x is defined`';
    else if (t.kind === 'op' && t.text === '=') hint = 'compare with ==';
    return exprError(this.source, t.start, `syntax error: expected ${expected} but found ${describeToken(t)}`, {
      expected,
      hint,
    });
  }

  private depth = 0;

  // Nesting is bounded so a hostile or runaway expression fails cleanly instead of overflowing the stack.
  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_DEPTH) throw this.fail(`at most ${MAX_DEPTH} levels of nesting`);
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private parseOr(): Node {
    return this.nested(() => this.parseOrInner());
  }

  private parseOrInner(): Node {
    let left = this.parseAnd();
    while (this.isWord('or') || this.isOp('||')) {
      this.next();
      const right = this.parseAnd();
      left = { type: 'logical', op: 'or', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  private parseAnd(): Node {
    let left = this.parseNot();
    while (this.isWord('and') || this.isOp('&&')) {
      this.next();
      const right = this.parseNot();
      left = { type: 'logical', op: 'and', left, right, start: left.start, end: right.end };
    }
    return left;
  }

  // `not` binds looser than comparisons (as in Python and Jinja): `not a == b` is `not (a == b)`.
  private parseNot(): Node {
    if (this.isWord('not')) {
      const t = this.next();
      const operand = this.nested(() => this.parseNot());
      return { type: 'unary', op: 'not', operand, start: t.start, end: operand.end };
    }
    return this.parseComparison();
  }

  private comparisonOp(): { op: BinaryOp; width: number } | undefined {
    const t = this.peek();
    if (t.kind === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.text)) return { op: t.text as BinaryOp, width: 1 };
    if (this.isWord('in')) return { op: 'in', width: 1 };
    if (this.isWord('not') && this.isWord('in', 1)) return { op: 'not in', width: 2 };
    return undefined;
  }

  private parseComparison(): Node {
    let left = this.parseAdditive();
    for (let found = this.comparisonOp(); found; found = this.comparisonOp()) {
      const opStart = this.peek().start;
      for (let k = 0; k < found.width; k++) this.next();
      const right = this.parseAdditive();
      left = { type: 'binary', op: found.op, left, right, opStart, start: left.start, end: right.end };
    }
    return left;
  }

  private parseAdditive(): Node {
    let left = this.parseMultiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const t = this.next();
      const right = this.parseMultiplicative();
      left = { type: 'binary', op: t.text as BinaryOp, left, right, opStart: t.start, start: left.start, end: right.end };
    }
    return left;
  }

  private parseMultiplicative(): Node {
    let left = this.parseUnary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const t = this.next();
      const right = this.parseUnary();
      left = { type: 'binary', op: t.text as BinaryOp, left, right, opStart: t.start, start: left.start, end: right.end };
    }
    return left;
  }

  private parseUnary(): Node {
    if (this.isOp('!') || this.isOp('-')) {
      const t = this.next();
      const operand = this.nested(() => this.parseUnary());
      return { type: 'unary', op: t.text as '!' | '-', operand, start: t.start, end: operand.end };
    }
    return this.parsePostfix();
  }

  private parsePostfix(): Node {
    let node = this.parsePrimary();
    for (;;) {
      if (this.isOp('.')) {
        this.next();
        const key = this.peek();
        if (key.kind !== 'ident' && key.kind !== 'number') throw this.fail('a key name after "."');
        this.next();
        this.checkKey(key.text, key.start);
        node = { type: 'member', object: node, key: key.text, keyStart: key.start, start: node.start, end: key.end };
      } else if (this.isOp('[')) {
        this.next();
        const index = this.parseOr();
        if (index.type === 'literal' && typeof index.value === 'string') this.checkKey(index.value, index.start);
        const close = this.expectOp(']', '"]"');
        node = { type: 'index', object: node, index, start: node.start, end: close.end };
      } else {
        return node;
      }
    }
  }

  private checkKey(key: string, offset: number): void {
    if (BLOCKED_KEYS.has(key)) {
      throw exprError(this.source, offset, `access to "${key}" is not allowed`, {
        hint: 'expressions reach plain data only',
      });
    }
  }

  private parsePrimary(): Node {
    const t = this.peek();
    if (t.kind === 'number') {
      this.next();
      return { type: 'literal', value: t.value as number, start: t.start, end: t.end };
    }
    if (t.kind === 'string') {
      this.next();
      return { type: 'literal', value: t.value as string, start: t.start, end: t.end };
    }
    if (t.kind === 'op' && t.text === '(') {
      this.next();
      const inner = this.parseOr();
      this.expectOp(')', '")"');
      return inner;
    }
    if (t.kind === 'op' && t.text === '[') {
      this.next();
      const items: Node[] = [];
      while (!this.isOp(']')) {
        items.push(this.parseOr());
        if (!this.isOp(',')) break;
        this.next();
      }
      const close = this.expectOp(']', '"," or "]"');
      return { type: 'list', items, start: t.start, end: close.end };
    }
    if (t.kind === 'ident') {
      if (t.text === 'true' || t.text === 'false') {
        this.next();
        return { type: 'literal', value: t.text === 'true', start: t.start, end: t.end };
      }
      if (t.text === 'null') {
        this.next();
        return { type: 'literal', value: null, start: t.start, end: t.end };
      }
      if (KEYWORDS.has(t.text)) throw this.fail('a value');
      this.next();
      if (this.isOp('(')) return this.parseCall(t);
      this.checkKey(t.text, t.start);
      return { type: 'name', name: t.text, start: t.start, end: t.end };
    }
    throw this.fail('a value');
  }

  private parseCall(nameToken: Token): Node {
    const name = nameToken.text;
    const arity = functionArity(name);
    if (!arity) {
      const suggestion = didYouMean(name, FUNCTION_NAMES);
      throw exprError(this.source, nameToken.start, `unknown function "${name}"`, {
        suggestion,
        expected: `one of ${FUNCTION_NAMES.join(', ')}`,
      });
    }
    this.expectOp('(');
    const args: Node[] = [];
    while (!this.isOp(')')) {
      args.push(this.parseOr());
      if (!this.isOp(',')) break;
      this.next();
    }
    const close = this.expectOp(')', '"," or ")"');
    if (args.length < arity.min || args.length > arity.max) {
      const count = arity.min === arity.max ? `${arity.min}` : `${arity.min} to ${arity.max}`;
      throw exprError(this.source, nameToken.start, `${name}() takes ${count} argument${arity.max === 1 ? '' : 's'}, got ${args.length}`);
    }
    if ((name === 'defined' || name === 'default') && !isPath(args[0]!)) {
      throw exprError(this.source, args[0]!.start, `${name}() needs a variable path as its first argument`, {
        expected: 'a path such as host.vars.port',
      });
    }
    return { type: 'call', name, args, start: nameToken.start, end: close.end };
  }
}

const cache = new Map<string, Expr>();
const CACHE_LIMIT = 2000;

/** Parses an expression; the result is cached, since the same `when:` runs once per host. */
export function parseExpression(text: string): Expr {
  const hit = cache.get(text);
  if (hit) return hit;
  const ast = new Parser(text, tokenize(text)).parse();
  const expr: Expr = Object.freeze({ source: text, ast });
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(text, expr);
  return expr;
}
