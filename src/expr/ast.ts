/**
 * The expression syntax tree. Every node keeps its [start, end) offsets in the source so errors can
 * quote exactly what the user wrote and point at a column.
 */
export type Node =
  | { type: 'literal'; value: string | number | boolean | null; start: number; end: number }
  | { type: 'list'; items: Node[]; start: number; end: number }
  | { type: 'name'; name: string; start: number; end: number }
  /** `a.b` or `a.0`; keyStart is where the key is written, the column errors point at. */
  | { type: 'member'; object: Node; key: string; keyStart: number; start: number; end: number }
  /** `a[expr]` */
  | { type: 'index'; object: Node; index: Node; start: number; end: number }
  | { type: 'unary'; op: 'not' | '!' | '-'; operand: Node; start: number; end: number }
  | { type: 'binary'; op: BinaryOp; left: Node; right: Node; opStart: number; start: number; end: number }
  | { type: 'logical'; op: 'and' | 'or'; left: Node; right: Node; start: number; end: number }
  | { type: 'call'; name: string; args: Node[]; start: number; end: number };

export type BinaryOp = '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in';

/** A parsed expression: the tree plus the text it came from (errors quote it). */
export interface Expr {
  readonly source: string;
  readonly ast: Node;
}

/** Keys that would reach the prototype machinery instead of plain data. */
export const BLOCKED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export function isPath(node: Node): boolean {
  return node.type === 'name' || node.type === 'member' || node.type === 'index';
}
