import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PgplayError } from '../core/errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs with pgplay's usage errors (exit 2) instead of TypeErrors. */
export function parse<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>({
      args: argv,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new PgplayError({
      code: 'USAGE',
      message: `${command}: ${(e as Error).message.replace(/\. To specify.*$/s, '')}`,
      hint: `pgplay help ${command}`,
    });
  }
}

export function usage(message: string, command?: string): PgplayError {
  return new PgplayError({ code: 'USAGE', message, hint: command ? `pgplay help ${command}` : 'pgplay --help' });
}

/** `-p key=value` pairs into an object; a value may contain '='. */
export function parseParamPairs(pairs: string[] | undefined, command: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`-p expects key=value, got "${pair}"`, command);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function parseList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

export function parsePositiveInt(value: string | undefined, flag: string, command: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) throw usage(`${flag} expects a positive integer, got "${value}"`, command);
  return Number(value);
}
