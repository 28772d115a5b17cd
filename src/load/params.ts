import { PgplayError, PgplayErrors, type SourcePosition } from '../core/errors.js';
import { targetValueProblem } from '../postgres/recovery-target.js';
import type { ParamDef } from '../model/playbook.js';
import { didYouMean } from '../schema/describe.js';

export type ParamValue = string | number | boolean;

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

/**
 * Turns `-p key=value` strings into typed params: each is coerced to its declared type and checked
 * against enum/pattern/minimum/maximum; defaults fill the rest; a required param without a value and
 * an undeclared param are errors. All problems are reported together (code USAGE).
 */
export function resolveParams(
  defs: Record<string, ParamDef> | undefined,
  given: Record<string, string>,
  /** Where a param is declared (file:line:col), for the errors of checks that span params. */
  declaredAt?: (name: string) => SourcePosition | undefined,
): Record<string, ParamValue> {
  const declared = defs ?? {};
  const names = Object.keys(declared);
  const errors: PgplayError[] = [];
  const out: Record<string, ParamValue> = {};

  for (const [name, raw] of Object.entries(given)) {
    const def = declared[name];
    if (!def) {
      const guess = didYouMean(name, names);
      errors.push(
        new PgplayError({
          code: 'USAGE',
          message: `unknown param "${name}"${guess ? `; did you mean "${guess}"?` : ''}`,
          expected: names.length ? `one of ${names.join(', ')}` : 'no params: this playbook declares none',
        }),
      );
      continue;
    }
    const coerced = coerceParam(raw, def);
    if (coerced === undefined) {
      errors.push(paramError(name, def, raw, `is not ${typeNoun(def.type)}`));
      continue;
    }
    const problem = checkParamValue(def, coerced);
    if (problem) errors.push(paramError(name, def, coerced, problem.what, problem.expected));
    else out[name] = coerced;
  }

  for (const [name, def] of Object.entries(declared)) {
    if (name in given) continue;
    if (def.default !== undefined) out[name] = def.default;
    else if (def.required) {
      errors.push(
        new PgplayError({
          code: 'USAGE',
          message: `missing required param "${name}"${def.description ? ` (${def.description})` : ''}`,
          expected: `-p ${name}=<${describeParam(def)}>`,
        }),
      );
    }
  }
  if (errors.length === 0) errors.push(...recoveryTargetErrors(declared, out, declaredAt));
  if (errors.length) throw new PgplayErrors(errors);
  return out;
}

/** `recovery_target_of`: a target value is checked against the target type another param holds. */
function recoveryTargetErrors(
  defs: Record<string, ParamDef>,
  values: Record<string, ParamValue>,
  declaredAt?: (name: string) => SourcePosition | undefined,
): PgplayError[] {
  const errors: PgplayError[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (def.recovery_target_of === undefined || values[name] === undefined) continue;
    const type = String(values[def.recovery_target_of] ?? '');
    const problem = targetValueProblem(type, String(values[name]));
    if (!problem) continue;
    const position = declaredAt?.(name);
    errors.push(
      new PgplayError({
        code: 'USAGE',
        message: `param "${name}" (for ${def.recovery_target_of}=${type}): value ${JSON.stringify(values[name])} ${problem.what}`,
        expected: problem.expected,
        ...(position ? { position } : {}),
      }),
    );
  }
  return errors;
}

/** Splits `key=value` arguments (the value may itself contain "="). */
export function parseParamAssignments(args: ReadonlyArray<string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) {
      throw new PgplayError({ code: 'USAGE', message: `invalid param "${arg}"`, expected: 'key=value' });
    }
    out[arg.slice(0, eq)] = arg.slice(eq + 1);
  }
  return out;
}

/** The typed value of a command-line string, or undefined when it cannot be read as the declared type. */
export function coerceParam(raw: string, def: ParamDef): ParamValue | undefined {
  const text = raw.trim();
  switch (def.type) {
    case 'string':
      return raw;
    case 'integer':
      return /^[+-]?\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
    case 'number':
      return text !== '' && Number.isFinite(Number(text)) ? Number(text) : undefined;
    case 'boolean':
      if (TRUE.has(text.toLowerCase())) return true;
      if (FALSE.has(text.toLowerCase())) return false;
      return undefined;
  }
}

/**
 * Why an already-typed value does not satisfy its definition (type, enum, pattern, range), or
 * undefined when it does. Shared by -p values and by checks of declared defaults.
 */
export function checkParamValue(def: ParamDef, value: unknown): { what: string; expected: string } | undefined {
  const typeOk =
    def.type === 'string'
      ? typeof value === 'string'
      : def.type === 'integer'
        ? typeof value === 'number' && Number.isInteger(value)
        : def.type === 'number'
          ? typeof value === 'number'
          : typeof value === 'boolean';
  if (!typeOk) return { what: `is not ${typeNoun(def.type)}`, expected: describeParam(def) };
  if (def.enum && !def.enum.some((v) => v === value)) {
    return { what: 'is not allowed', expected: `one of ${def.enum.map(String).join(', ')}` };
  }
  if (def.pattern !== undefined && typeof value === 'string' && !new RegExp(def.pattern, 'u').test(value)) {
    return { what: 'does not match the pattern', expected: `a value matching /${def.pattern}/` };
  }
  if (typeof value === 'number') {
    if (def.minimum !== undefined && value < def.minimum) return { what: 'is too small', expected: describeParam(def) };
    if (def.maximum !== undefined && value > def.maximum) return { what: 'is too large', expected: describeParam(def) };
  }
  return undefined;
}

/** "an integer from 1 to 10", "one of auto, full", "true or false", ... */
export function describeParam(def: ParamDef): string {
  if (def.enum) return `one of ${def.enum.map(String).join(', ')}`;
  const noun = typeNoun(def.type);
  if (def.type === 'integer' || def.type === 'number') {
    if (def.minimum !== undefined && def.maximum !== undefined) return `${noun} from ${def.minimum} to ${def.maximum}`;
    if (def.minimum !== undefined) return `${noun} >= ${def.minimum}`;
    if (def.maximum !== undefined) return `${noun} <= ${def.maximum}`;
  }
  if (def.type === 'string' && def.pattern !== undefined) return `a string matching /${def.pattern}/`;
  return noun;
}

function typeNoun(type: ParamDef['type']): string {
  return { string: 'a string', integer: 'an integer', number: 'a number', boolean: 'true or false' }[type];
}

function paramError(name: string, def: ParamDef, value: unknown, what: string, expected = describeParam(def)): PgplayError {
  // A secret's value must not end up in a terminal or a CI log, not even when it is wrong.
  const shown = def.secret ? '' : ` ${JSON.stringify(value)}`;
  return new PgplayError({ code: 'USAGE', message: `param "${name}": value${shown} ${what}`, expected });
}
