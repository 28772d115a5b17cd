import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors } from '../../src/core/errors.js';
import { loadYamlFile, parseYaml } from '../../src/load/yaml.js';
import { fileTempDir } from '../support/temp-dirs.js';

function yamlErrors(text: string): string[] {
  try {
    parseYaml(text, 'f.yml');
  } catch (e) {
    if (!(e instanceof PgplayErrors)) throw e;
    expect(e.errors.every((x) => x.code === 'YAML')).toBe(true);
    return e.errors.map((x) => x.format());
  }
  throw new Error('expected YAML errors');
}

describe('positions', () => {
  const text = [
    'cluster: main', // 1
    'hosts:', // 2
    '  db1:', // 3
    '    address: 10.0.0.11', // 4
    '    role: primary', // 5
    '  db2: { address: 10.0.0.12, role: standby }', // 6
    'steps:', // 7
    '  - id: first', // 8
    '    argv: [pg_ctl, "-D", /data]', // 9
    '  -', // 10
    '    - nested', // 11
    '    - [a, b]', // 12
    'empty:', // 13
    '',
  ].join('\n');
  const doc = parseYaml<Record<string, unknown>>(text, 'inv.yml');

  test('data is plain JavaScript', () => {
    expect(doc.data.cluster).toBe('main');
    expect((doc.data.steps as unknown[])[1]).toEqual(['nested', ['a', 'b']]);
    expect(doc.data.empty).toBeNull();
    expect(doc.file).toBe('inv.yml');
    expect(doc.text).toBe(text);
  });

  test('values and keys of block mappings', () => {
    expect(doc.position(['cluster'])).toEqual({ file: 'inv.yml', line: 1, col: 10 });
    expect(doc.position(['cluster'], 'key')).toEqual({ file: 'inv.yml', line: 1, col: 1 });
    expect(doc.position(['hosts', 'db1', 'role'])).toEqual({ file: 'inv.yml', line: 5, col: 11 });
    expect(doc.position(['hosts', 'db1', 'role'], 'key')).toEqual({ file: 'inv.yml', line: 5, col: 5 });
    expect(doc.position(['hosts', 'db1'])).toEqual({ file: 'inv.yml', line: 4, col: 5 });
  });

  test('flow mappings', () => {
    expect(doc.position(['hosts', 'db2', 'role'])).toMatchObject({ line: 6, col: 36 });
    expect(doc.position(['hosts', 'db2', 'role'], 'key')).toMatchObject({ line: 6, col: 30 });
  });

  test('sequences, flow sequences and sequences of sequences', () => {
    expect(doc.position(['steps', 0])).toMatchObject({ line: 8, col: 5 });
    expect(doc.position(['steps', 0, 'id'])).toMatchObject({ line: 8, col: 9 });
    expect(doc.position(['steps', 0, 'argv', 2])).toMatchObject({ line: 9, col: 26 });
    expect(doc.position(['steps', 1, 0])).toMatchObject({ line: 11, col: 7 });
    expect(doc.position(['steps', 1, 1, 1])).toMatchObject({ line: 12, col: 11 });
  });

  test('missing nodes fall back to the nearest ancestor; empty values to their key', () => {
    expect(doc.position(['hosts', 'db1', 'pgdata'])).toMatchObject({ line: 4, col: 5 });
    expect(doc.position(['steps', 5, 'id'])).toMatchObject({ line: 8, col: 3 });
    expect(doc.position(['nope'])).toMatchObject({ line: 1, col: 1 });
    expect(doc.position(['empty'])).toMatchObject({ line: 13, col: 1 });
    expect(doc.position(['cluster', 'deeper'])).toMatchObject({ line: 1, col: 10 });
  });

  test('values reached through an alias or a merge key point at the anchor', () => {
    const d = parseYaml('base: &b\n  port: 5432\nhosts:\n  db1:\n    <<: *b\n    role: primary\n  db2: *b\n', 'a.yml');
    expect(d.data).toEqual({ base: { port: 5432 }, hosts: { db1: { port: 5432, role: 'primary' }, db2: { port: 5432 } } });
    expect(d.position(['hosts', 'db1', 'port'])).toMatchObject({ line: 2, col: 9 });
    expect(d.position(['hosts', 'db1', 'role'])).toMatchObject({ line: 6, col: 11 });
    expect(d.position(['hosts', 'db2', 'port'])).toMatchObject({ line: 2, col: 9 });
  });
});

describe('malformed YAML is reported with its exact position', () => {
  test('bad indentation', () => {
    expect(yamlErrors('postgres:\n  version: 15\n port: 5432\n')).toEqual([
      'f.yml:3:2: all mapping items must start at the same column',
    ]);
  });

  test('a tab used for indentation', () => {
    expect(yamlErrors('postgres:\n\tversion: 15\n')).toEqual([
      'f.yml:2:1: tabs are not allowed for indentation; indent with spaces',
    ]);
  });

  test('a duplicate key names the key and its first line', () => {
    expect(yamlErrors('cluster: main\nhosts: {}\ncluster: other\n')).toEqual([
      'f.yml:3:1: duplicate key "cluster" (first defined at line 1)',
    ]);
  });

  test('duplicate keys at several depths are all reported, in order', () => {
    expect(yamlErrors('a:\n  x: 1\n  x: 2\nb: 1\nb: 2\n')).toEqual([
      'f.yml:3:3: duplicate key "x" (first defined at line 2)',
      'f.yml:5:1: duplicate key "b" (first defined at line 4)',
    ]);
  });

  test('an unclosed quote', () => {
    expect(yamlErrors('name: "nightly\nsteps: []\n')).toEqual(['f.yml:3:1: missing closing "quote']);
  });

  test('an unknown tag would be silently misread, so it is an error', () => {
    expect(yamlErrors('password: !vault abc\n')).toEqual(['f.yml:1:11: unresolved tag: !vault']);
  });

  test('more than one document', () => {
    expect(yamlErrors('cluster: a\n---\ncluster: b\n')).toEqual([
      'f.yml:2:1: only one YAML document per file is allowed (expected a single document (remove the "---" separator))',
    ]);
  });

  test('an empty file, or one with only comments', () => {
    expect(yamlErrors('')).toEqual(['f.yml:1:1: the file is empty (expected a mapping of keys and values)']);
    expect(yamlErrors('# nothing yet\n')).toEqual(['f.yml:1:1: the file is empty (expected a mapping of keys and values)']);
    expect(yamlErrors('---\n')).toEqual(['f.yml:1:1: the file is empty (expected a mapping of keys and values)']);
  });

  test('a top level that is not a mapping', () => {
    expect(yamlErrors('# steps\n- id: a\n')).toEqual([
      'f.yml:2:1: the top level must be a mapping (key: value), found a list (expected a mapping of keys and values)',
    ]);
    expect(yamlErrors('just text\n')).toEqual([
      'f.yml:1:1: the top level must be a mapping (key: value), found a single value (expected a mapping of keys and values)',
    ]);
  });
});

describe('loadYamlFile', () => {
  test('reads and parses a file', async () => {
    const dir = fileTempDir('yaml');
    const file = join(dir, 'x.yml');
    writeFileSync(file, 'name: x\n');
    const doc = await loadYamlFile(file);
    expect(doc.data).toEqual({ name: 'x' });
    expect(doc.position(['name'])).toEqual({ file, line: 1, col: 7 });
  });

  test('a missing file is a usage error naming the path', async () => {
    const err = await loadYamlFile('/nonexistent/pgplay.yml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgplayErrors);
    const [only] = (err as PgplayErrors).errors;
    expect(only!.code).toBe('USAGE');
    expect(only!.format()).toBe('cannot read /nonexistent/pgplay.yml: no such file');
  });
});
