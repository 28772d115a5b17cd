import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { evaluate, evaluateCondition, parseExpression, referencedNames } from '../../src/expr/index.js';

const scope = {
  facts: { in_recovery: false, version: 15, timeline: 2, replay_lsn: '0/3000060', system_identifier: '7301234567890123456' },
  params: { type: 'full', max_lag_bytes: '16MB', delta: true, empty: '', nothing: null },
  rows: [{ count: '3', name: 'main' }, { count: '0', name: 'other' }],
  hosts: { 'db-1': { address: '10.0.0.11' }, db2: { address: '10.0.0.12' } },
  list: [1, 2, 3],
  tags: ['backup', 'nightly'],
};

/** Evaluates and returns the PgplayError it must throw. */
function failure(expr: string, s: Record<string, unknown> = scope): PgplayError {
  try {
    evaluate(expr, s);
  } catch (e) {
    expect(e).toBeInstanceOf(PgplayError);
    expect((e as PgplayError).code).toBe('RENDER');
    return e as PgplayError;
  }
  throw new Error(`expected ${expr} to fail`);
}

describe('literals', () => {
  it('reads integers, decimals, booleans, null and lists', () => {
    expect(evaluate('42', {})).toBe(42);
    expect(evaluate('3.25', {})).toBe(3.25);
    expect(evaluate('true', {})).toBe(true);
    expect(evaluate('false', {})).toBe(false);
    expect(evaluate('null', {})).toBe(null);
    expect(evaluate("[1, 'a', [true], []]", {})).toEqual([1, 'a', [true], []]);
  });

  it('reads single- and double-quoted strings with escapes', () => {
    expect(evaluate(`'it\\'s'`, {})).toBe("it's");
    expect(evaluate(`"say \\"hi\\""`, {})).toBe('say "hi"');
    expect(evaluate(`'a\\nb\\tc\\\\d'`, {})).toBe('a\nb\tc\\d');
    expect(evaluate(`'\\u00e9'`, {})).toBe('é');
    expect(evaluate(`"it's"`, {})).toBe("it's");
    // unknown escapes keep the backslash so regexes need no doubling
    expect(evaluate(`'\\d+'`, {})).toBe('\\d+');
  });

  it('round-trips any string written with JSON escapes', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        expect(evaluate(JSON.stringify(s), {})).toBe(s);
      }),
    );
  });
});

describe('paths', () => {
  it('reads dotted paths, numeric segments, indexes and quoted keys', () => {
    expect(evaluate('facts.version', scope)).toBe(15);
    expect(evaluate('rows.0.name', scope)).toBe('main');
    expect(evaluate('rows[1].name', scope)).toBe('other');
    expect(evaluate("rows[0]['count']", scope)).toBe('3');
    expect(evaluate("hosts['db-1'].address", scope)).toBe('10.0.0.11');
    expect(evaluate('rows[-1].name', scope)).toBe('other');
    expect(evaluate('list[facts.timeline]', scope)).toBe(3);
  });

  it('names the full unknown path, its column and the nearest key', () => {
    const e = failure('facts.in_recovry');
    expect(e.message).toBe(
      'unknown variable "facts.in_recovry" in expression "facts.in_recovry" at column 7; did you mean "facts.in_recovery"?',
    );
    expect(e.expected).toBe('a key of facts: one of in_recovery, version, timeline, replay_lsn, system_identifier');
  });

  it('reports an unknown root variable with a suggestion from the scope', () => {
    const e = failure('not fatcs.in_recovery');
    expect(e.message).toBe('unknown variable "fatcs" in expression "not fatcs.in_recovery" at column 5; did you mean "facts"?');
  });

  it('gives no suggestion when nothing is close', () => {
    expect(failure('facts.zzzzzzzz').message).toBe('unknown variable "facts.zzzzzzzz" in expression "facts.zzzzzzzz" at column 7');
  });

  it('reports out-of-range indexes and keys on scalars', () => {
    expect(failure('rows[5]').message).toBe('index 5 is out of range for "rows" (a list of 2 items) in expression "rows[5]" at column 6');
    expect(failure('facts.version.major').message).toBe(
      'cannot read "major" of "facts.version", which is number 15 in expression "facts.version.major" at column 15',
    );
    expect(failure('params.nothing.x').message).toContain('which is null');
  });

  it('blocks prototype machinery, written or computed', () => {
    expect(failure('facts.__proto__').message).toBe('access to "__proto__" is not allowed in expression "facts.__proto__" at column 7');
    expect(failure("facts['constructor']").message).toContain('access to "constructor" is not allowed');
    expect(failure('rows.prototype').message).toContain('access to "prototype" is not allowed');
    expect(failure("facts['con' + 'structor']").message).toContain('access to "constructor" is not allowed');
    expect(failure('constructor').message).toContain('access to "constructor" is not allowed');
    // inherited members are not data: toString exists on every object but is not an own key
    expect(failure('facts.toString').message).toContain('unknown variable "facts.toString"');
  });
});

describe('operators', () => {
  it('applies arithmetic precedence and parentheses', () => {
    expect(evaluate('1 + 2 * 3', {})).toBe(7);
    expect(evaluate('(1 + 2) * 3', {})).toBe(9);
    expect(evaluate('10 - 4 - 3', {})).toBe(3);
    expect(evaluate('7 % 4 + 8 / 2', {})).toBe(7);
    expect(evaluate('-2 * -3', {})).toBe(6);
    expect(evaluate('- facts.version', scope)).toBe(-15);
  });

  it('concatenates strings and lists with +, and refuses mixed types', () => {
    expect(evaluate("'pg' + '15'", {})).toBe('pg15');
    expect(evaluate('[1] + [2, 3]', {})).toEqual([1, 2, 3]);
    const e = failure("'v' + facts.version");
    expect(e.message).toBe('cannot add string "v" and number 15 in expression "\'v\' + facts.version" at column 5');
    expect(e.hint).toBe('convert with int(), float() or string()');
    expect(evaluate("'v' + string(facts.version)", scope)).toBe('v15');
  });

  it('refuses division by zero and arithmetic on strings', () => {
    expect(failure('1 / 0').message).toBe('division by zero in expression "1 / 0" at column 3');
    expect(failure('1 % 0').message).toContain('division by zero');
    expect(failure("'a' * 2").message).toContain('cannot multiply string "a" and number 2');
  });

  it('compares numbers numerically, strings lexically, numeric strings against numbers', () => {
    expect(evaluate('facts.version >= 12', scope)).toBe(true);
    expect(evaluate('9 < 10', {})).toBe(true);
    expect(evaluate("'9' < '10'", {})).toBe(false); // lexical
    expect(evaluate("'abc' < 'abd'", {})).toBe(true);
    expect(evaluate('rows[0].count == 3', scope)).toBe(true); // bigint comes back from pg as text
    expect(evaluate('rows[0].count > 2', scope)).toBe(true);
    expect(evaluate('1 == 1.0', {})).toBe(true);
    expect(evaluate("1 == 'one'", {})).toBe(false);
    expect(evaluate('null == null', {})).toBe(true);
    expect(evaluate('[1, [2]] == [1, [2]]', {})).toBe(true);
    expect(evaluate("params.type != 'diff'", scope)).toBe(true);
    expect(evaluate('2 <= 2 and 3 > 2 and 1 < 2 and 2 >= 3', {})).toBe(false);
    expect(failure('true < 1').message).toBe('cannot compare boolean true with number 1 in expression "true < 1" at column 6');
  });

  it('tests membership in lists, substrings and object keys', () => {
    expect(evaluate("'nightly' in tags", scope)).toBe(true);
    expect(evaluate("'weekly' not in tags", scope)).toBe(true);
    expect(evaluate("'ful' in params.type", scope)).toBe(true);
    expect(evaluate("'db2' in hosts", scope)).toBe(true);
    expect(evaluate("'db3' in hosts", scope)).toBe(false);
    expect(evaluate('3 in list', scope)).toBe(true);
    expect(failure('1 in facts.version').message).toContain('cannot look for number 1 in number 15');
  });

  it('gives `not` lower precedence than comparisons and `!` higher', () => {
    expect(evaluate('not 1 == 2', {})).toBe(true); // not (1 == 2)
    expect(evaluate('!1 == false', {})).toBe(true); // (!1) == false
    expect(evaluate('not facts.in_recovery and facts.version >= 15', scope)).toBe(true);
    expect(evaluate('not not true', {})).toBe(true);
  });

  it('binds and tighter than or, with symbolic spellings', () => {
    expect(evaluate('true or false and false', {})).toBe(true);
    expect(evaluate('(true or false) and false', {})).toBe(false);
    expect(evaluate('true || false && false', {})).toBe(true);
  });

  it('short-circuits and/or, so the unevaluated side may be missing', () => {
    expect(evaluate('false and facts.nope', scope)).toBe(false);
    expect(evaluate('true or facts.nope', scope)).toBe(true);
    expect(failure('true and facts.nope').message).toContain('unknown variable "facts.nope"');
  });

  it('uses Python truthiness', () => {
    for (const falsy of ['0', "''", '[]', 'null', 'false', 'params.empty']) expect(evaluateCondition(falsy, scope)).toBe(false);
    for (const t of ['1', "'x'", '[0]', 'facts', 'true']) expect(evaluateCondition(t, scope)).toBe(true);
    expect(evaluateCondition('hosts', scope)).toBe(true);
    expect(evaluateCondition('hosts.db2', { hosts: { db2: {} } })).toBe(false);
  });
});

describe('functions', () => {
  it('converts and inspects values', () => {
    expect(evaluate("length('abc')", {})).toBe(3);
    expect(evaluate('length(rows)', scope)).toBe(2);
    expect(evaluate('length(hosts)', scope)).toBe(2);
    expect(evaluate("int('42')", {})).toBe(42);
    expect(evaluate("int(' 7.9 ')", {})).toBe(7);
    expect(evaluate('int(true)', {})).toBe(1);
    expect(evaluate("float('2.5')", {})).toBe(2.5);
    expect(evaluate('string(15)', {})).toBe('15');
    expect(evaluate('string(true)', {})).toBe('true');
    expect(evaluate("bool('on')", {})).toBe(true);
    expect(evaluate("bool('off')", {})).toBe(false);
    expect(evaluate("bool('t')", {})).toBe(true);
    expect(evaluate('bool(0)', {})).toBe(false);
    expect(evaluate("lower('MiXed')", {})).toBe('mixed');
    expect(evaluate("upper('MiXed')", {})).toBe('MIXED');
    expect(evaluate("trim('  x  ')", {})).toBe('x');
  });

  it('searches strings and lists', () => {
    expect(evaluate("contains(tags, 'backup')", scope)).toBe(true);
    expect(evaluate("contains('archive_mode', 'mode')", {})).toBe(true);
    expect(evaluate("startswith('15.4', '15.')", {})).toBe(true);
    expect(evaluate("endswith('base.tar.gz', '.gz')", {})).toBe(true);
    expect(evaluate("matches('PostgreSQL 15.4 on x86_64', '^PostgreSQL \\d+\\.\\d+')", {})).toBe(true);
    expect(evaluate("matches('abc', '^b')", {})).toBe(false);
  });

  it('converts LSNs to byte positions so lag is a subtraction', () => {
    expect(evaluate("lsn('0/3000060')", {})).toBe(0x3000060);
    expect(evaluate("lsn('16/B374D848')", {})).toBe(0x16 * 2 ** 32 + 0xb374d848);
    expect(evaluate("lsn('0/4000000') - lsn(facts.replay_lsn) <= 16777216", scope)).toBe(true);
    expect(evaluate("lsn('0/4000061') - lsn(facts.replay_lsn) <= bytes('16MB')", scope)).toBe(false);
    expect(evaluate("lsn('1/0') - lsn('0/FFFFFFFF')", {})).toBe(1);
    const e = failure('lsn(params.nothing)');
    expect(e.message).toBe(`lsn() expects a PostgreSQL LSN such as '0/3000060', got null null in expression "lsn(params.nothing)" at column 5`);
    expect(e.hint).toContain('return null on a primary');
    expect(failure("lsn('0-3000060')").message).toContain("lsn() expects a PostgreSQL LSN");
  });

  it('reads PostgreSQL sizes, 1024-based', () => {
    expect(evaluate("bytes('16MB')", {})).toBe(16 * 1024 * 1024);
    expect(evaluate("bytes('8kB')", {})).toBe(8192);
    expect(evaluate("bytes('1GB')", {})).toBe(1024 ** 3);
    expect(evaluate("bytes('2TB')", {})).toBe(2 * 1024 ** 4);
    expect(evaluate("bytes('100')", {})).toBe(100);
    expect(evaluate("bytes('512 B')", {})).toBe(512);
    expect(evaluate('bytes(params.max_lag_bytes) == 16777216', scope)).toBe(true);
    expect(failure("bytes('16 parsecs')").message).toContain("bytes() expects a size such as '16MB', got string \"16 parsecs\"");
  });

  it('splits what a reader prints into words, or at a separator', () => {
    const du = { stdout: '123456\t/var/lib/postgresql/15/main\n' };
    expect(evaluate('int(split(du.stdout)[0])', { du })).toBe(123456);
    expect(evaluate("int(split('  7 4096 ')[0]) * int(split('  7 4096 ')[1]) / 1024", {})).toBe(28);
    expect(evaluate("split('', ',')", {})).toEqual(['']);
    expect(evaluate("split('   ')", {})).toEqual([]);
    expect(evaluate("split('a,b,,c', ',')", {})).toEqual(['a', 'b', '', 'c']);
    expect(failure("split('a', '')").message).toContain('split() needs a separator that is not empty');
    expect(failure('split(1)').message).toContain('split() expects a string, got number 1');
  });

  it('reports bad argument types at the argument', () => {
    expect(failure('upper(facts.version)').message).toBe(
      'upper() expects a string, got number 15 in expression "upper(facts.version)" at column 7',
    );
    expect(failure("int('abc')").message).toContain('int() cannot convert string "abc" to a number');
    expect(failure("bool('maybe')").message).toContain('bool() cannot convert "maybe" to a boolean');
    expect(failure("matches('a', '(')").message).toContain('matches() got an invalid regular expression');
  });

  it('rejects unknown functions and wrong argument counts when parsing', () => {
    const e = failure('lenght(rows)');
    expect(e.message).toBe('unknown function "lenght" in expression "lenght(rows)" at column 1; did you mean "length"?');
    expect(e.expected).toContain('one of length, int, float');
    expect(failure("lower('a', 'b')").message).toBe(`lower() takes 1 argument, got 2 in expression "lower('a', 'b')" at column 1`);
    expect(failure('default(facts.x)').message).toContain('default() takes 2 arguments, got 1');
  });

  it('makes defined() and default() lenient, and only they', () => {
    expect(evaluate('defined(facts.version)', scope)).toBe(true);
    expect(evaluate('defined(facts.nope)', scope)).toBe(false);
    expect(evaluate('defined(nope.deeper.still)', scope)).toBe(false);
    expect(evaluate('defined(rows[7].name)', scope)).toBe(false);
    expect(evaluate('defined(params.nothing)', scope)).toBe(true); // null is a value
    expect(evaluate('default(params.port, 5432)', scope)).toBe(5432);
    expect(evaluate('default(params.nothing, 5432)', scope)).toBe(5432);
    expect(evaluate("default(params.type, 'auto')", scope)).toBe('full');
    expect(evaluate('default(facts.version.x, 1)', scope)).toBe(1);
    expect(evaluate('not defined(facts.nope) or facts.nope', scope)).toBe(true);
    // the fallback and index expressions stay strict
    expect(failure('default(params.port, facts.nope)').message).toContain('unknown variable "facts.nope"');
    expect(failure('defined(rows[facts.nope])').message).toContain('unknown variable "facts.nope"');
    // lenient lookups still refuse prototype access
    expect(failure("defined(facts['__proto__'])").message).toContain('access to "__proto__" is not allowed');
    expect(failure('defined(1 + 2)').message).toBe(
      'defined() needs a variable path as its first argument in expression "defined(1 + 2)" at column 9',
    );
  });
});

describe('syntax errors', () => {
  it('give the column and what was expected', () => {
    const e = failure('facts.version >= ');
    expect(e.message).toBe(
      'syntax error: expected a value but found the end of the expression in expression "facts.version >= " at column 18',
    );
    expect(e.expected).toBe('a value');
    expect(failure('(1 + 2').message).toBe('syntax error: expected ")" but found the end of the expression in expression "(1 + 2" at column 7');
    expect(failure('1 +* 2').message).toBe('syntax error: expected a value but found "*" in expression "1 +* 2" at column 4');
    expect(failure('a b').message).toBe(
      'syntax error: expected an operator or the end of the expression but found "b" in expression "a b" at column 3',
    );
    expect(failure("'open").message).toBe(`unterminated string in expression "'open" at column 1`);
    expect(failure('').message).toBe('syntax error: expected an expression but found the end of the expression in expression "" at column 1');
    expect(failure('facts.').message).toContain('expected a key name after "."');
    expect(failure('a $ b').message).toBe('unexpected character "$" in expression "a $ b" at column 3');
  });

  it('hints at common habits from other languages', () => {
    expect(failure('x = 1').hint).toBe('compare with ==');
    expect(failure('x === 1').hint).toBe('write ==; there is no ===');
    expect(failure('facts.version is defined').hint).toBe('write defined(x) instead of `x is defined`');
    expect(failure('{{ facts.in_recovery }}').hint).toBe(
      'conditions are expressions, not templates: write `facts.in_recovery` instead of `{{ facts.in_recovery }}`',
    );
    expect(failure('16MB > 1').hint).toContain("bytes('16MB')");
  });
});

describe('API', () => {
  it('evaluates a parsed expression repeatedly against different scopes', () => {
    const expr = parseExpression('facts.version >= 12');
    expect(evaluate(expr, { facts: { version: 11 } })).toBe(false);
    expect(evaluate(expr, { facts: { version: 16 } })).toBe(true);
    expect(parseExpression('facts.version >= 12')).toBe(expr); // cached
  });

  it('takes YAML booleans as they are', () => {
    expect(evaluateCondition(true, {})).toBe(true);
    expect(evaluateCondition(false, {})).toBe(false);
  });

  it('lists the root names an expression reads, including lenient ones', () => {
    expect(referencedNames("not facts.in_recovery and backup.rc == 0 or defined(vars.x) and lsn(facts.lsn) > default(params.n, 1)")).toEqual([
      'facts',
      'backup',
      'vars',
      'params',
    ]);
    expect(referencedNames('rows[idx].name')).toEqual(['rows', 'idx']);
    expect(referencedNames("'literal' + 1")).toEqual([]);
  });

  it('never reaches code: no eval or Function in the implementation', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const dir = new URL('../../src/expr/', import.meta.url);
    for (const file of await readdir(dir)) {
      const text = await readFile(new URL(file, dir), 'utf8');
      expect(text).not.toMatch(/\beval\(|new Function|\bFunction\(/);
    }
  });
});

describe('robustness', () => {
  it('bounds nesting instead of overflowing the stack', () => {
    expect(evaluate('('.repeat(40) + '1' + ')'.repeat(40), {})).toBe(1);
    expect(failure('('.repeat(5000) + '1' + ')'.repeat(5000)).message).toContain('at most 64 levels of nesting');
    expect(failure('!'.repeat(5000) + 'true').message).toContain('at most 64 levels of nesting');
    expect(failure('not '.repeat(5000) + 'true').message).toContain('at most 64 levels of nesting');
  });

  it('points at the bracket form for keys with dashes and refuses filters', () => {
    const e = failure('hosts.db-1.address');
    expect(e.message).toBe('unknown variable "hosts.db" in expression "hosts.db-1.address" at column 7; did you mean "hosts.db2"?');
    expect(e.hint).toBe('write hosts["db-1"] for a key with a dash');
    expect(failure('tags | length').hint).toBe('there are no filters; call functions instead: length(x), not x | length');
  });

  it('evaluates random arithmetic like JavaScript does', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: 1, max: 50 }), (a, b, c) => {
        expect(evaluate(`${a} + ${b} * ${c} - (${a} % ${c}) - -${c}`, {})).toBe(
          a + b * c - (a % c) + c,
        );
      }),
    );
  });
});
