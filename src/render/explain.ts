import { didYouMean } from '../expr/suggest.js';
import { isPathNode, pathText, type Frame, type HbNode, type HbPath } from './ast.js';

/**
 * Why a path did not resolve, worked out against the real render context: which segment is missing
 * (Handlebars only reports the last one, often "in undefined"), what the parent was, and the nearest
 * existing key. Inside {{#each}} every item is checked, so one item lacking a key is found.
 */
export interface Explanation {
  /** The path as written, e.g. `host.varz.port`. */
  path: string;
  /** The path up to and including the failing segment, e.g. `host.varz`. */
  failedPath: string;
  /** The path before the failing segment, e.g. `host` (empty at the top level). */
  parentPath: string;
  segment: string;
  /** Index of the failing segment in the path's parts. */
  index: number;
  /** 'missing': the parent is an object without that key; 'scalar': the parent is not an object. */
  reason: 'missing' | 'scalar';
  parentValue?: unknown;
  keys: string[];
  suggestion?: string;
  within?: string;
}

interface Base {
  values: unknown[];
  parts: string[];
  /** The block whose context the path is read from, e.g. `{{#each hosts}}`; absent at the top. */
  within?: string;
}

function elementsOf(values: unknown[]): unknown[] {
  return values.flatMap((v) => (Array.isArray(v) ? v : v !== null && typeof v === 'object' ? Object.values(v) : []));
}

function contextValues(frames: Frame[], root: unknown): unknown[] | undefined {
  if (frames.length === 0) return [root];
  const frame = frames[frames.length - 1]!;
  const values = valuesOf(frame.param, frames.slice(0, -1), root);
  if (!values) return undefined;
  return frame.helper === 'each' ? elementsOf(values) : values;
}

/** Every value a path takes when rendered (one per {{#each}} item), or undefined if not data. */
export function valuesOf(node: HbNode | undefined, frames: Frame[], root: unknown): unknown[] | undefined {
  if (!isPathNode(node)) return undefined;
  const base = resolveBase(node, frames, root);
  if (!base) return undefined;
  let current = base.values;
  for (const part of base.parts) {
    current = current.flatMap((v) =>
      v !== null && typeof v === 'object' && Object.hasOwn(v, part) ? [(v as Record<string, unknown>)[part]] : [],
    );
  }
  return current;
}

function resolveBase(path: HbPath, frames: Frame[], root: unknown): Base | undefined {
  if (path.data) return path.parts[0] === 'root' ? { values: [root], parts: path.parts.slice(1) } : undefined;
  const level = frames.length - path.depth;
  if (level < 0) return undefined;
  const explicitThis = /^(this\b|\.\/)/.test(path.original);
  const head = path.parts[0];
  if (!explicitThis && head !== undefined) {
    for (let j = level - 1; j >= 0; j--) {
      const frame = frames[j]!;
      if (frame.blockParams[0] === head) {
        const values = valuesOf(frame.param, frames.slice(0, j), root);
        if (!values) return undefined;
        return { values: frame.helper === 'each' ? elementsOf(values) : values, parts: path.parts.slice(1) };
      }
      if (frame.blockParams.includes(head)) return undefined; // @index/@key block param: not data
    }
  }
  const values = contextValues(frames.slice(0, level), root);
  if (!values) return undefined;
  const frame = frames[level - 1];
  const within = frame && isPathNode(frame.param) ? `{{#${frame.helper} ${frame.param.original}}}` : undefined;
  return { values, parts: path.parts, within };
}

export function explainPath(path: HbPath, frames: Frame[], root: unknown): Explanation | undefined {
  const base = resolveBase(path, frames, root);
  if (!base) return undefined;
  const offset = path.parts.length - base.parts.length;
  let current = base.values;
  for (let i = 0; i < base.parts.length; i++) {
    const part = base.parts[i]!;
    const next: unknown[] = [];
    const lacking: object[] = [];
    let scalar: { value: unknown } | undefined;
    for (const v of current) {
      if (v !== null && typeof v === 'object') {
        if (Object.hasOwn(v, part)) next.push((v as Record<string, unknown>)[part]);
        else lacking.push(v);
      } else if (!scalar) {
        scalar = { value: v };
      }
    }
    if (lacking.length > 0 || scalar) {
      const index = offset + i;
      const keys = [...new Set(lacking.flatMap((o) => Object.keys(o)))];
      const near = lacking.length > 0 ? didYouMean(part, keys) : undefined;
      const suggestionParts = [...path.parts];
      if (near !== undefined) suggestionParts[index] = near;
      return {
        path: pathText(path),
        failedPath: pathText(path, path.parts.slice(0, index + 1)),
        parentPath: index === 0 ? '' : pathText(path, path.parts.slice(0, index)),
        segment: part,
        index,
        reason: lacking.length > 0 ? 'missing' : 'scalar',
        parentValue: lacking.length > 0 ? undefined : scalar!.value,
        keys,
        suggestion: near === undefined ? undefined : pathText(path, suggestionParts),
        within: base.within,
      };
    }
    current = next;
  }
  return undefined;
}
