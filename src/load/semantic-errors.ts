/**
 * How the meaning checks (inventory-semantic.ts, barman-semantic.ts, semantic.ts) report: each problem a
 * SEMANTIC (or SCHEMA) error placed at its document path.
 */
import { PgplayError } from '../core/errors.js';
import type { DocPath, LoadedDocument } from './yaml.js';

export type Emit = (path: DocPath, message: string, extra?: { expected?: string; hint?: string; part?: 'key' | 'value' }) => void;

export function collector(doc: LoadedDocument, code: 'SEMANTIC' | 'SCHEMA' = 'SEMANTIC'): { errors: PgplayError[]; emit: Emit } {
  const errors: PgplayError[] = [];
  const emit: Emit = (path, message, extra = {}) =>
    errors.push(
      new PgplayError({
        code,
        message,
        expected: extra.expected,
        hint: extra.hint,
        position: doc.position(path, extra.part ?? 'value'),
      }),
    );
  return { errors, emit };
}
