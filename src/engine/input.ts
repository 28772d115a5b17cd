import { PgplayError } from '../core/errors.js';
import type { Action } from './action.js';
import { hasGeneratedValidator, validatorFor } from '../schema/validators.js';

/**
 * Loads the generated validator validateRenderedInput will use for `action` (a module of dist/validators),
 * ahead of the first input. An action without one is left alone: its validator is compiled with Ajv when
 * first used, a heavier load than this is meant to move.
 */
export function loadInputValidator(action: Action<any>): void {
  if (hasGeneratedValidator('input', action.schema)) validatorFor('input', action.schema);
}

/**
 * Validates an action's input after rendering, against the action's own strict schema. Rendering
 * yields strings, so types are coerced ("5" → 5) and schema defaults filled in (the `input` profile).
 */
export function validateRenderedInput(action: Action<any>, input: unknown): Record<string, unknown> {
  const validate = validatorFor('input', action.schema);
  const copy = structuredClone(input ?? {});
  if (!validate(copy)) {
    const problems = (validate.errors ?? []).map((e) => {
      const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : action.name;
      if (e.keyword === 'additionalProperties') return `${where}: unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"`;
      if (e.keyword === 'enum') return `${where}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
      return `${where}: ${e.message}`;
    });
    throw new PgplayError({
      code: 'RENDER',
      message: `${action.name} input is invalid after rendering: ${problems.join('; ')}`,
    });
  }
  return copy as Record<string, unknown>;
}
