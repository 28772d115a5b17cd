/**
 * Walking the Handlebars syntax tree: find the path expression at a source location together with
 * the block helpers ({{#each}}, {{#with}}) that enclose it, so an error can be explained in terms of
 * the data the template actually saw.
 */

export interface Loc {
  start: { line: number; column: number };
  end: { line: number; column: number };
}

/** The subset of Handlebars' AST this module reads. */
export interface HbNode {
  type: string;
  loc: Loc;
  [key: string]: unknown;
}

export interface HbPath extends HbNode {
  type: 'PathExpression';
  original: string;
  parts: string[];
  depth: number;
  data: boolean;
}

/** A block that changes the context for its body: {{#each list}} or {{#with obj}}, maybe `as |x i|`. */
export interface Frame {
  helper: 'each' | 'with';
  param: HbNode | undefined;
  blockParams: string[];
}

export interface Visit {
  node: HbNode;
  /** Enclosing context-changing blocks, outermost first. */
  frames: Frame[];
  /** The mustache, block or sub-expression this node is the helper name or an argument of. */
  owner?: HbNode;
}

function asNode(v: unknown): HbNode | undefined {
  return v !== null && typeof v === 'object' && typeof (v as HbNode).type === 'string' ? (v as HbNode) : undefined;
}

function children(v: unknown): HbNode[] {
  return Array.isArray(v) ? v.map(asNode).filter((n): n is HbNode => n !== undefined) : [];
}

/** Every node in document order, with the frames that enclose it. */
export function* walk(node: HbNode, frames: Frame[] = [], owner?: HbNode): Generator<Visit> {
  yield { node, frames, owner };
  switch (node.type) {
    case 'Program':
      for (const child of children(node.body)) yield* walk(child, frames);
      return;
    case 'MustacheStatement':
    case 'SubExpression':
    case 'Decorator':
    case 'PartialStatement':
    case 'BlockStatement':
    case 'PartialBlockStatement':
    case 'DecoratorBlock': {
      const path = asNode(node.path) ?? asNode(node.name);
      if (path) yield* walk(path, frames, node);
      for (const param of children(node.params)) yield* walk(param, frames, node);
      const hash = asNode(node.hash);
      if (hash) for (const pair of children(hash.pairs)) {
        const value = asNode(pair.value);
        if (value) yield* walk(value, frames, node);
      }
      const program = asNode(node.program);
      if (program) {
        const helper = path?.type === 'PathExpression' ? (path as HbPath).original : '';
        const inner =
          helper === 'each' || helper === 'with'
            ? [...frames, { helper, param: children(node.params)[0], blockParams: (program.blockParams as string[]) ?? [] } as Frame]
            : frames;
        yield* walk(program, inner);
      }
      // {{else}} of each/with runs in the outer context.
      const inverse = asNode(node.inverse);
      if (inverse) yield* walk(inverse, frames);
      return;
    }
    default:
      return;
  }
}

export function findAt(ast: HbNode, line: number, column: number, predicate: (v: Visit) => boolean): Visit | undefined {
  for (const v of walk(ast)) {
    if (v.node.loc && v.node.loc.start.line === line && v.node.loc.start.column === column && predicate(v)) return v;
  }
  return undefined;
}

export function isPathNode(node: HbNode | undefined): node is HbPath {
  return node?.type === 'PathExpression';
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** How a path is written, rebuilt from its parts: `host.vars.x`, `../a.b`, `@root.a`, `a.[weird key]`. */
export function pathText(path: HbPath, parts: string[] = path.parts): string {
  if (path.parts.length === 0) return path.original;
  const lead =
    (path.data ? '@' : '') + '../'.repeat(path.depth) + (/^(this\.|\.\/)/.test(path.original) ? path.original.slice(0, path.original.startsWith('this.') ? 5 : 2) : '');
  return lead + parts.map((p) => (IDENT.test(p) ? p : `[${p}]`)).join('.');
}
