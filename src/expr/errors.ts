import { PgplayError } from '../core/errors.js';

/** Every expression error names the expression and the 1-based column, so a user can find the spot. */
export function exprError(
  source: string,
  offset: number,
  what: string,
  extra: { expected?: string; hint?: string; suggestion?: string } = {},
): PgplayError {
  let message = `${what} in expression "${source}" at column ${offset + 1}`;
  if (extra.suggestion) message += `; did you mean "${extra.suggestion}"?`;
  return new PgplayError({ code: 'RENDER', message, expected: extra.expected, hint: extra.hint });
}
