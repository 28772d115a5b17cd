import type { PgplayError } from './errors.js';

/** Sorts errors by file, line and column so output is stable whatever order checks ran in. */
export function sortErrors(errors: PgplayError[]): PgplayError[] {
  return [...errors].sort((a, b) => {
    const pa = a.position;
    const pb = b.position;
    if (!pa || !pb) return pa ? 1 : pb ? -1 : 0;
    return pa.file.localeCompare(pb.file) || pa.line - pb.line || pa.col - pb.col || a.message.localeCompare(b.message);
  });
}
