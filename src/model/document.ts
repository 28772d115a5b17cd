import type { SourcePosition } from '../core/errors.js';

export type DocPath = ReadonlyArray<string | number>;

/** A parsed YAML file that still knows where every key and value came from. */
export interface LoadedDocument<T = unknown> {
  file: string;
  text: string;
  data: T;
  /**
   * Where the node at `path` starts (1-based). `part: 'key'` points at the mapping key instead of its
   * value. A path that does not exist (e.g. a missing key) falls back to the nearest existing ancestor,
   * so every error can be placed somewhere meaningful.
   */
  position(path: DocPath, part?: 'key' | 'value'): SourcePosition;
}
