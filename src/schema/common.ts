import type { JsonSchema } from './json-schema.js';
import { DURATION_PATTERN } from '../core/duration.js';

/** Where the published schemas live; also their `$id`s, so editors can cache them by name. */
export const SCHEMA_BASE_URL = 'https://pgplay.dev/schemas/';
export const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';

/**
 * `errorMessage` is read by editors built on the VS Code JSON language service (yaml-language-server
 * among them) and by our own error mapper as the "expected ..." text of a failed value.
 */
export const DURATION: JsonSchema = {
  description: 'A number of seconds, or a duration such as 500ms, 30s, 5m, 2h, 1h30m, 1d',
  anyOf: [
    { type: 'string', pattern: DURATION_PATTERN },
    { type: 'number', minimum: 0 },
  ],
  errorMessage: 'a number of seconds or a duration such as 500ms, 30s, 5m, 2h, 1h30m',
};

export const SECRET_REF: JsonSchema = {
  description:
    'A secret, given only by reference so it never sits in the file: {env: NAME} reads an environment variable, {file: PATH} reads a file (trailing newline removed)',
  writeOnly: true,
  anyOf: [
    {
      type: 'object',
      properties: { env: { type: 'string', minLength: 1, description: 'Environment variable that holds the secret' } },
      required: ['env'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: { file: { type: 'string', minLength: 1, description: 'File that holds the secret' } },
      required: ['file'],
      additionalProperties: false,
    },
  ],
  errorMessage: 'a secret reference {env: NAME} or {file: PATH}',
};

export const NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]*$';
export const NAME_EXPECTED = 'made of letters, digits, "_", "." and "-"';

export const IDENTIFIER_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';
export const IDENTIFIER_EXPECTED = 'an identifier made of letters, digits and "_", not starting with a digit';

export const SCALAR_MAP: JsonSchema = {
  type: 'object',
  additionalProperties: { type: ['string', 'number', 'boolean'] },
};

export const PORT: JsonSchema = { type: 'integer', minimum: 1, maximum: 65535 };
