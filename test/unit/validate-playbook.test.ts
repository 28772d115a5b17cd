import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors, type PgplayError } from '../../src/core/errors.js';
import { loadInventory } from '../../src/load/inventory.js';
import { loadPlaybook, playbookErrors } from '../../src/load/playbook.js';
import { parseYaml } from '../../src/load/yaml.js';
import { playbookDocument } from '../../src/schema/documents.js';
import type { Inventory } from '../../src/model/inventory.js';
import { fakeActions } from '../fixtures/fake-actions.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const VALID_FILE = join(FIXTURES, 'valid', 'nightly-backup.yml');
const VALID = readFileSync(VALID_FILE, 'utf8');
const inventory: Inventory = (await loadInventory(join(FIXTURES, 'valid', 'inventory.yml'))).inventory;

function shown(errors: PgplayError[]): string[] {
  return errors.map((e) => {
    const text = e.format();
    return e.position ? text.replace(e.position.file, basename(e.position.file)) : text;
  });
}

/** Checks text as if it were the playbook file beside the valid fixture (so its templates/ dir is found). */
function check(text: string, withInventory = true): string[] {
  return shown(playbookErrors(parseYaml(text, VALID_FILE), { actions: fakeActions, inventory: withInventory ? inventory : undefined }, []));
}

function edit(from: string, to: string): string {
  expect(VALID.split(from).length, `fixture must contain ${from} once`).toBe(2);
  return VALID.replace(from, to);
}

describe('the DESIGN.md example playbook', () => {
  test('validates with zero errors against the example inventory', async () => {
    const { playbook, doc } = await loadPlaybook(VALID_FILE, { actions: fakeActions, inventory });
    expect(playbook.steps.map((s) => s.id)).toEqual(['archiving', 'backup']);
    expect(playbook.params?.type).toEqual({ type: 'string', enum: ['auto', 'full', 'diff', 'incr'], default: 'auto' });
    expect(doc.position(['steps', 1, 'pgbackrest', 'type'])).toMatchObject({ line: 16, col: 42 });
  });

  test('and without an inventory', () => {
    expect(check(VALID, false)).toEqual([]);
  });
});

const F = 'nightly-backup.yml';

describe('one defect at a time: exact position and message', () => {
  const cases: Array<[string, string, string, string[]]> = [
    [
      'unknown step key with did-you-mean',
      '    timeout: 2h',
      '    timeuot: 2h',
      [`${F}:17:5, step backup: unknown key "timeuot"; did you mean "timeout"?`],
    ],
    [
      'misspelt action key: the unknown key explains it, no "no action" noise',
      '    pgbackrest: {',
      '    pgbackrst: {',
      [`${F}:16:5, step backup: unknown key "pgbackrst"; did you mean "pgbackrest"?`],
    ],
    ['wrong type', '    timeout: 2h', '    retries: many', [`${F}:17:14, step backup: invalid value "many" for "retries" (expected an integer >= 0)`]],
    [
      'bad enum in an action input (templates allowed, but this is not one)',
      'type: "{{params.type}}"',
      'type: weekly',
      [`${F}:16:42, step backup: invalid value "weekly" for "type" (expected one of full, diff, incr)`],
    ],
    [
      'bad duration',
      'timeout: 2h',
      'timeout: 2 hours',
      [`${F}:17:14, step backup: invalid value "2 hours" for "timeout" (expected a number of seconds or a duration such as 500ms, 30s, 5m, 2h, 1h30m)`],
    ],
    [
      'missing required key in an action input',
      '{ command: backup, type',
      '{ type',
      [`${F}:16:17, step backup: missing required key "command"`],
    ],
    ['missing step id', '  - id: backup\n    name:', '  - name:', [`${F}:13:5, step #2: missing required key "id"`]],
    ['missing hosts', '    hosts: repository\n', '', [`${F}:13:5, step backup: missing required key "hosts"`]],
    [
      'duplicate step id points at the second one',
      '- id: backup',
      '- id: archiving',
      [`${F}:13:9: duplicate step id "archiving" (first used at line 8) (expected a step id unique in the playbook)`],
    ],
    [
      'step with no action',
      '    pgbackrest: { command: backup, type: "{{params.type}}" }\n',
      '',
      [`${F}:13:5: step backup has no action (expected one of command, template, pgbackrest, postgres, include)`],
    ],
    [
      'step with two actions',
      '    timeout: 2h',
      '    postgres: { state: started }\n    timeout: 2h',
      [`${F}:17:5: step backup has more than one action: pgbackrest, postgres (expected exactly one action per step; split it into several steps)`],
    ],
    [
      'unknown host in hosts',
      '    hosts: repository',
      '    hosts: [repository, db3]',
      [
        `${F}:15:25: unknown host or role "db3" in hosts; did you mean "db1"? (expected a host name (db1, db2, bk1, drill1), a role (primary, standby, repository, drill) or all)`,
      ],
    ],
    [
      'unknown role in hosts',
      '    hosts: primary ',
      '    hosts: primaries ',
      [
        `${F}:10:12: unknown host or role "primaries" in hosts; did you mean "primary"? (expected a host name (db1, db2, bk1, drill1), a role (primary, standby, repository, drill) or all)`,
      ],
    ],
    [
      'unknown host in a handler',
      '{ hosts: primary, postgres',
      '{ hosts: db5, postgres',
      [
        `${F}:20:29: unknown host or role "db5" in hosts; did you mean "db1"? (expected a host name (db1, db2, bk1, drill1), a role (primary, standby, repository, drill) or all)`,
      ],
    ],
    [
      'unknown handler in notify',
      'notify: [reload-postgres]',
      'notify: [restart-postgres]',
      [`${F}:12:14: step archiving notifies unknown handler "restart-postgres"; did you mean "reload-postgres"? (expected one of reload-postgres)`],
    ],
    [
      'reserved register name',
      'register: backup',
      'register: facts',
      [`${F}:18:15: "facts" is reserved and cannot be a register name (expected a name other than params, vars, host, hosts, inventory, facts, registered, item, item_index)`],
    ],
    [
      'register that is not an identifier',
      'register: backup',
      'register: backup-result',
      [
        `${F}:18:15, step backup: invalid value "backup-result" for "register" (expected an identifier made of letters, digits and "_", not starting with a digit)`,
      ],
    ],
    [
      'missing template file',
      'src: postgresql.conf.hbs',
      'src: postgres.conf.hbs',
      [
        `${F}:11:22: template "postgres.conf.hbs" not found; did you mean "postgresql.conf.hbs"? (expected a file under templates/ beside the playbook, beside the playbook, or a shipped template)`,
      ],
    ],
    [
      'bad param default',
      'default: auto }',
      'default: weekly }',
      [`${F}:5:66: default "weekly" of param "type" is not allowed (expected one of auto, full, diff, incr)`],
    ],
    [
      'param default of the wrong type',
      '  type: { type: string, enum: [auto, full, diff, incr], default: auto }',
      '  full_every: { type: integer, default: "7" }',
      [`${F}:5:41: default "7" of param "full_every" is not an integer (expected an integer)`],
    ],
    [
      'param of an unknown type',
      'type: string,',
      'type: text,',
      [`${F}:5:17: invalid value "text" for "type" (expected one of string, integer, number, boolean)`],
    ],
    [
      'unparsable when expression',
      '    timeout: 2h',
      '    when: "params.type == "',
      [
        `${F}:17:11: step backup: when: syntax error: expected a value but found the end of the expression in expression "params.type == " at column 16 (expected a value)`,
      ],
    ],
    [
      'bad mode pattern in an action input',
      'mode: "0600"',
      'mode: "rw-------"',
      [`${F}:11:93, step archiving: invalid value "rw-------" for "mode" (expected a string matching /^0?[0-7]{3}$/)`],
    ],
    [
      'unknown top-level key',
      'vars: {}',
      'variables: {}',
      [`${F}:6:1: unknown key "variables" (expected one of name, description, inventory, params, vars, report, steps, handlers)`],
    ],
  ];

  test.each(cases)('%s', (_name, from, to, expected) => {
    // Hints (second lines) are asserted where they matter, below.
    expect(check(edit(from, to)).map((s) => s.split('\n')[0])).toEqual(expected);
  });
});

describe('templates in values', () => {
  test('a template may stand for an integer, a boolean, an enum or a duration', () => {
    const text = edit(
      '    timeout: 2h',
      '    timeout: "{{vars.t}}"\n    retries: "{{params.n}}"\n    ignore_errors: "{{vars.flag}}"',
    ).replace('mode: "0600"', 'mode: "{{vars.mode}}"');
    expect(check(text)).toEqual([]);
  });

  test('templated hosts and template sources are left to run time', () => {
    const text = edit('    hosts: repository', '    hosts: "{{params.host}}"').replace(
      'src: postgresql.conf.hbs',
      'src: "{{params.conf}}.hbs"',
    );
    expect(check(text)).toEqual([]);
  });
});

describe('fixtures with many defects report all of them, sorted by position', () => {
  test('shape errors: schema and action count together', async () => {
    const err = await loadPlaybook(join(FIXTURES, 'invalid', 'playbook-shape.yml'), { actions: fakeActions }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PgplayErrors);
    const errors = (err as PgplayErrors).errors;
    expect(errors.every((e) => e.code === 'SCHEMA')).toBe(true);
    expect(shown(errors)).toEqual([
      'playbook-shape.yml:5:68, step archiving: invalid value "rw-------" for "mode" (expected a string matching /^0?[0-7]{3}$/)',
      'playbook-shape.yml:6:13, step archiving: invalid value "reload" for "notify" (expected a list of strings)',
      'playbook-shape.yml:9:42, step backup: invalid value "weekly" for "type" (expected one of full, diff, incr)',
      'playbook-shape.yml:10:14, step backup: invalid value "soon" for "timeout" (expected a number of seconds or a duration such as 500ms, 30s, 5m, 2h, 1h30m)',
      'playbook-shape.yml:11:5, step backup: unknown key "retires"; did you mean "retries"?',
      'playbook-shape.yml:12:5, step #3: missing required key "id"',
      'playbook-shape.yml:15:5: step nothing-to-do has no action (expected one of command, template, pgbackrest, postgres, include)',
      'playbook-shape.yml:19:22, step greedy: invalid value 5 for "hosts[1]" (expected a non-empty string)\n  hint: quote it to keep it a string: "5"',
      'playbook-shape.yml:21:5: step greedy has more than one action: postgres, command (expected exactly one action per step; split it into several steps)',
      'playbook-shape.yml:21:23, step greedy: invalid value true for "argv[0]" (expected a string)\n  hint: quote it to keep it a string: "true"',
    ]);
  });

  test('meaning errors, with host names checked against an inventory', async () => {
    const err = await loadPlaybook(join(FIXTURES, 'invalid', 'playbook-semantic.yml'), { actions: fakeActions, inventory }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PgplayErrors);
    const errors = (err as PgplayErrors).errors;
    expect(errors.every((e) => e.code === 'SEMANTIC')).toBe(true);
    const hosts = '(expected a host name (db1, db2, bk1, drill1), a role (primary, standby, repository, drill) or all)';
    expect(shown(errors).map((s) => s.split('\n')[0])).toEqual([
      'playbook-semantic.yml:3:66: default "weekly" of param "type" is not allowed (expected one of auto, full, diff, incr)',
      'playbook-semantic.yml:4:41: default "7" of param "full_every" is not an integer (expected an integer)',
      `playbook-semantic.yml:7:12: unknown host or role "primry" in hosts; did you mean "primary"? ${hosts}`,
      'playbook-semantic.yml:8:22: template "postgressql.conf.hbs" not found; did you mean "postgresql.conf.hbs"? (expected a file under templates/ beside the playbook, beside the playbook, or a shipped template)',
      'playbook-semantic.yml:9:14: step archiving notifies unknown handler "reload-postgrse"; did you mean "reload-postgres"? (expected one of reload-postgres)',
      `playbook-semantic.yml:11:25: unknown host or role "db9" in hosts; did you mean "db1"? ${hosts}`,
      'playbook-semantic.yml:13:15: "facts" is reserved and cannot be a register name (expected a name other than params, vars, host, hosts, inventory, facts, registered, item, item_index)',
      'playbook-semantic.yml:14:9: duplicate step id "backup" (first used at line 10) (expected a step id unique in the playbook)',
      `playbook-semantic.yml:16:11: step backup: when: syntax error: expected a value but found the end of the expression in expression "params.type == 'full' and" at column 26 (expected a value)`,
    ]);
    expect(errors[3]!.hint).toBe(
      `looked in ${join(FIXTURES, 'invalid', 'templates')}, ${join(FIXTURES, 'invalid')}, ${join(FIXTURES, '..', '..', 'templates')}`,
    );
  });

  test('an include must name an existing playbook, relative to the including one', () => {
    const text = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    include: { playbook: ../invalid/nope.yml }');
    const errors = playbookErrors(parseYaml(text, VALID_FILE), { actions: fakeActions, inventory }, []);
    expect(shown(errors).map((s) => s.split('\n')[0])).toEqual([`${F}:16:26: included playbook "../invalid/nope.yml" not found (expected a playbook file, relative to this playbook)`]);
    expect(errors[0]!.hint).toBe(`looked for ${join(FIXTURES, 'invalid', 'nope.yml')}`);
    const ok = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    include: { playbook: ../invalid/playbook-shape.yml }');
    expect(check(ok)).toEqual([]);
  });

  test('a looped include needs hosts; an include cannot be a handler', () => {
    const looped = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    loop: [a, b]\n    include: { playbook: nightly-backup.yml }');
    expect(check(looped)).toEqual([]);
    const hostless = 'name: l\nsteps:\n  - id: each\n    loop: [a, b]\n    include: { playbook: nightly-backup.yml }\n';
    expect(check(hostless).map((l) => l.split('\n')[0])).toEqual([`${F}:4:5: step each: a looped include needs hosts (its loop is rendered on them) (expected hosts: the hosts whose facts and registered values the loop reads)`]);
    const handler = `name: h\nsteps:\n  - { id: s, hosts: primary, command: { argv: ["true"] }, notify: [h] }\nhandlers:\n  h:\n    hosts: primary\n    include: { playbook: nightly-backup.yml }\n`;
    expect(check(handler).map((l) => l.split('\n')[0])).toEqual([`${F}:7:5: handler h: include cannot run as a handler (expected one action in a handler)`]);
  });

  test('rescue: only on an include step, naming an existing playbook', () => {
    const onAction = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    pgbackrest: { command: backup, type: "{{params.type}}" }\n    rescue: { playbook: nightly-backup.yml }');
    expect(check(onAction).map((l) => l.split('\n')[0])).toEqual([
      `${F}:17:5: step backup: rescue belongs on an include step (the section it puts back) (expected include: the section, and rescue: the playbook that undoes it when the section fails)`,
    ]);
    const missing = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    include: { playbook: nightly-backup.yml }\n    rescue: { playbook: ../invalid/undo.yml }');
    expect(check(missing).map((l) => l.split('\n')[0])).toEqual([`${F}:17:25: rescue playbook "../invalid/undo.yml" not found (expected a playbook file, relative to this playbook)`]);
    const ok = edit('    pgbackrest: { command: backup, type: "{{params.type}}" }', '    include: { playbook: nightly-backup.yml }\n    rescue: { playbook: nightly-backup.yml, params: { type: full } }');
    expect(check(ok)).toEqual([]);
  });

  test('an include step may leave hosts to the included playbook', () => {
    const text = edit('    hosts: repository\n    pgbackrest: { command: backup, type: "{{params.type}}" }', '    include: { playbook: nightly-backup.yml }');
    expect(check(text)).toEqual([]);
  });
});

describe('included playbooks', () => {
  test('their steps may omit hosts (inherited from the include step); top-level playbooks may not', () => {
    const text = edit('    hosts: repository\n', '');
    const doc = parseYaml(text, VALID_FILE);
    expect(shown(playbookErrors(doc, { actions: fakeActions, inventory }, []))).toEqual([`${F}:13:5, step backup: missing required key "hosts"`]);
    expect(playbookErrors(doc, { actions: fakeActions, inventory, included: true }, [])).toEqual([]);
  });

  test("a valid one is checked with the playbook's own validator: the included-playbook validator is built only for the errors of one that is not valid", () => {
    // An action list of its own: its two document schemas are built (and compiled) here, and counted.
    const actions = [...fakeActions];
    const included = playbookDocument(actions, { hostsOptional: true });
    const doc = parseYaml(edit('    hosts: repository\n', ''), VALID_FILE);
    expect(playbookErrors(doc, { actions, inventory, included: true }, [])).toEqual([]);
    expect(playbookDocument(actions).isBuilt).toBe(true);
    expect(included.isBuilt).toBe(false);
    // Not valid: the errors are the included schema's, exactly as before (hosts still not required).
    const bad = parseYaml(edit('    hosts: repository\n', '    retries: many\n'), VALID_FILE);
    expect(shown(playbookErrors(bad, { actions, inventory, included: true }, []))).toEqual(shown(playbookErrors(bad, { actions: fakeActions, inventory, included: true }, [])));
    expect(shown(playbookErrors(bad, { actions, inventory, included: true }, []))).toHaveLength(1);
    expect(included.isBuilt).toBe(true);
  });
});

describe('alternatives written as oneOf of required keys', () => {
  const step = (input: string) => `name: p\nsteps:\n  - id: run\n    hosts: primary\n    command: ${input}\n`;

  test('none given', () => {
    expect(check(step('{ creates: /x }'))).toEqual([`${F}:5:14, step run: "command" needs one of argv, shell (expected exactly one of argv, shell)`]);
  });

  test('both given: points at the second', () => {
    expect(check(step('{ argv: [ls], shell: ls }'))).toEqual([
      `${F}:5:28, step run: "command" takes only one of argv, shell, found argv, shell (expected exactly one of argv, shell)`,
    ]);
  });

  test('one given is fine', () => {
    expect(check(step('{ shell: "pg_dumpall -g > /tmp/g.sql" }'))).toEqual([]);
  });
});

describe('numbers where a string was wanted', () => {
  test('a mode written without quotes gets a hint with what the user typed', () => {
    const errors = playbookErrors(parseYaml(edit('mode: "0600"', 'mode: 0600'), VALID_FILE), { actions: fakeActions, inventory }, []);
    expect(shown(errors)).toEqual([
      `${F}:11:93, step archiving: invalid value 600 for "mode" (expected a string matching /^0?[0-7]{3}$/)\n  hint: quote it to keep it a string: "0600"`,
    ]);
  });
});
