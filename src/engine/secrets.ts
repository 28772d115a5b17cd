import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';

/**
 * Secrets only ever come by reference ({env: NAME} or {file: PATH}); resolving one registers its value
 * with the redactor before it can reach any output.
 */
export function isSecretRef(value: unknown): value is { env: string } | { file: string } {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && (keys[0] === 'env' || keys[0] === 'file');
}

export function createSecretResolver(redactor: Redactor, env: NodeJS.ProcessEnv = process.env) {
  const cache = new Map<string, string | undefined>();
  return async function resolveSecret(ref: unknown): Promise<string | undefined> {
    if (ref === undefined || ref === null) return undefined;
    if (!isSecretRef(ref)) {
      throw new PgplayError({ code: 'SCHEMA', message: 'a secret must be a reference', expected: '{env: NAME} or {file: PATH}' });
    }
    const key = JSON.stringify(ref);
    if (cache.has(key)) return cache.get(key);
    let value: string | undefined;
    if ('env' in ref) {
      value = env[ref.env];
      if (value === undefined) {
        throw new PgplayError({
          code: 'USAGE',
          message: `secret environment variable ${ref.env} is not set`,
          hint: `export ${ref.env}=... before running pgplay`,
        });
      }
    } else {
      const path = ref.file.startsWith('~/') ? homedir() + ref.file.slice(1) : ref.file;
      try {
        value = (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
      } catch (e) {
        throw new PgplayError({ code: 'USAGE', message: `cannot read secret file ${path}: ${(e as NodeJS.ErrnoException).code ?? e}` });
      }
    }
    redactor.add(value);
    cache.set(key, value);
    return value;
  };
}

export type SecretResolver = ReturnType<typeof createSecretResolver>;
