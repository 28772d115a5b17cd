import { describe, expect, test } from 'vitest';
import { PgplayErrors } from '../../src/core/errors.js';
import { parseParamAssignments, resolveParams } from '../../src/load/params.js';
import type { ParamDef } from '../../src/model/playbook.js';

const defs: Record<string, ParamDef> = {
  type: { type: 'string', enum: ['auto', 'full', 'diff', 'incr'], default: 'auto' },
  full_every: { type: 'integer', minimum: 1, maximum: 30, default: 7 },
  max_lag: { type: 'number', minimum: 0 },
  delta: { type: 'boolean', default: true },
  host: { type: 'string', required: true, pattern: '^[a-z][a-z0-9]*$', description: 'the standby to build' },
  token: { type: 'string', secret: true, pattern: '^[A-F0-9]{8}$' },
};

function usageErrors(given: Record<string, string>, d: Record<string, ParamDef> = defs): string[] {
  try {
    resolveParams(d, given);
  } catch (e) {
    if (!(e instanceof PgplayErrors)) throw e;
    expect(e.errors.every((x) => x.code === 'USAGE')).toBe(true);
    expect(e.exitCode).toBe(2);
    return e.errors.map((x) => x.format());
  }
  throw new Error('expected usage errors');
}

describe('resolveParams', () => {
  test('coerces to the declared types and applies defaults', () => {
    expect(resolveParams(defs, { host: 'db2', full_every: '14', max_lag: '1.5', delta: 'no' })).toEqual({
      host: 'db2',
      full_every: 14,
      max_lag: 1.5,
      delta: false,
      type: 'auto',
    });
    expect(resolveParams(defs, { host: 'db2', type: 'full', delta: 'TRUE' })).toMatchObject({ type: 'full', delta: true, full_every: 7 });
  });

  test('no params declared and none given', () => {
    expect(resolveParams(undefined, {})).toEqual({});
  });

  test('-p for an unknown param, with did-you-mean', () => {
    expect(usageErrors({ host: 'db2', tpye: 'full' })).toEqual([
      'unknown param "tpye"; did you mean "type"? (expected one of type, full_every, max_lag, delta, host, token)',
    ]);
    expect(usageErrors({ x: '1' }, {})).toEqual(['unknown param "x" (expected no params: this playbook declares none)']);
  });

  test('-p with the wrong type', () => {
    expect(usageErrors({ host: 'db2', full_every: 'weekly' })).toEqual([
      'param "full_every": value "weekly" is not an integer (expected an integer from 1 to 30)',
    ]);
    expect(usageErrors({ host: 'db2', full_every: '1.5' })).toEqual([
      'param "full_every": value "1.5" is not an integer (expected an integer from 1 to 30)',
    ]);
    expect(usageErrors({ host: 'db2', delta: 'maybe' })).toEqual(['param "delta": value "maybe" is not true or false (expected true or false)']);
    expect(usageErrors({ host: 'db2', max_lag: '' })).toEqual(['param "max_lag": value "" is not a number (expected a number >= 0)']);
  });

  test('enum, pattern and range are checked after coercion', () => {
    expect(usageErrors({ host: 'db2', type: 'weekly' })).toEqual(['param "type": value "weekly" is not allowed (expected one of auto, full, diff, incr)']);
    expect(usageErrors({ host: 'DB2' })).toEqual(['param "host": value "DB2" does not match the pattern (expected a value matching /^[a-z][a-z0-9]*$/)']);
    expect(usageErrors({ host: 'db2', full_every: '31' })).toEqual(['param "full_every": value 31 is too large (expected an integer from 1 to 30)']);
    expect(usageErrors({ host: 'db2', max_lag: '-1' })).toEqual(['param "max_lag": value -1 is too small (expected a number >= 0)']);
  });

  test('a required param without value names what it is for', () => {
    expect(usageErrors({})).toEqual(['missing required param "host" (the standby to build) (expected -p host=<a string matching /^[a-z][a-z0-9]*$/>)']);
  });

  test('every problem is reported at once', () => {
    expect(usageErrors({ tpye: 'x', delta: 'maybe' })).toHaveLength(3);
  });

  test('a secret value is never echoed, even when wrong', () => {
    const [msg] = usageErrors({ host: 'db2', token: 'hunter2' });
    expect(msg).toBe('param "token": value does not match the pattern (expected a value matching /^[A-F0-9]{8}$/)');
  });
});

describe('parseParamAssignments', () => {
  test('splits at the first "="', () => {
    expect(parseParamAssignments(['type=full', 'expr=a=b', 'empty='])).toEqual({ type: 'full', expr: 'a=b', empty: '' });
  });

  test('rejects an argument without a name', () => {
    expect(() => parseParamAssignments(['=x'])).toThrow('invalid param "=x"');
    expect(() => parseParamAssignments(['full'])).toThrow('invalid param "full"');
  });
});
