/**
 * Every secret a run will use is resolved and checked before the first step: a value that no tool
 * could take (a line break splits a .pgpass entry, a passphrase on stdin, a conninfo) is bad input,
 * exit 2 with nothing changed, not a failure at the step that happens to use it after a restore ran.
 * Messages name where the reference is, never the value.
 */
import { PgplayError } from '../core/errors.js';
import { isSecretRef } from './secrets.js';

export interface LocatedSecretRef {
  /** Where it is written, e.g. "replication.password" or "hosts.db1.postgres.password". */
  path: string;
  ref: { env: string } | { file: string };
}

/** A key that holds a secret in a step's input (pgpass entries' password); other keys named env or file are not secrets. */
const SECRET_KEY = /(password|passphrase|pass)$/i;

/**
 * Every {env}/{file} reference in a value, with its dotted path. In the inventory every reference is
 * a secret (the schema allows them nowhere else); in a playbook only under a secret's key, since an
 * action input may well have a one-key object named env or file.
 */
export function locateSecretRefs(value: unknown, path = '', options: { secretKeysOnly?: boolean } = {}, out: LocatedSecretRef[] = []): LocatedSecretRef[] {
  const key = /([^.[\]]*)$/.exec(path)?.[1] ?? '';
  if (isSecretRef(value) && typeof Object.values(value)[0] === 'string' && (!options.secretKeysOnly || SECRET_KEY.test(key))) out.push({ path, ref: value });
  else if (Array.isArray(value)) value.forEach((v, i) => locateSecretRefs(v, `${path}[${i}]`, options, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) locateSecretRefs(v, path ? `${path}.${k}` : k, options, out);
  }
  return out;
}

function describeRef(ref: LocatedSecretRef['ref']): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/** Throws SEMANTIC (exit 2) when a resolved secret cannot be used: empty, a line break, a NUL byte. */
export function checkSecretValue(where: string, located: LocatedSecretRef, value: string | undefined): void {
  const problem =
    value === undefined || value === ''
      ? 'is empty'
      : /[\r\n]/.test(value)
        ? 'has a line break'
        : value.includes('\0')
          ? 'has a NUL byte'
          : undefined;
  if (!problem) return;
  throw new PgplayError({
    code: 'SEMANTIC',
    message: `${where} ${located.path} (${describeRef(located.ref)}) ${problem}`,
    expected: 'a password or passphrase on one line (a file secret may end with one newline)',
  });
}
