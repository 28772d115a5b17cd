import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { createRenderer, type Renderer } from '../../src/render/index.js';

const ctx = {
  host: { name: 'db1', pgdata: '/var/lib/postgresql/15/main', vars: { port: 5432, label: "it's", path: 'C:\\path' } },
  hosts: [
    { name: 'db1', address: '10.0.0.11' },
    { name: 'db2', address: '10.0.0.12' },
  ],
  params: { n: 3, delta: true, type: 'full', list: ['a', 'b'], count: '7' },
  postgres: { settings: { shared_buffers: '128MB', max_connections: 100, hot_standby: true } },
};

let r: Renderer;
beforeAll(() => {
  r = createRenderer({ templateDirs: [] });
});

function render(text: string, context: object = ctx): string {
  return r.renderString(text, context, 't.hbs');
}

function failure(fn: () => unknown): PgplayError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PgplayError);
    expect((e as PgplayError).code).toBe('RENDER');
    return e as PgplayError;
  }
  throw new Error('expected a render error');
}

describe('strict variables', () => {
  it('names the template, line, column, full path and the nearest key', () => {
    const e = failure(() => render('port = 1\nlisten = {{host.vars.prot}}\n'));
    expect(e.message).toBe('unknown variable "host.vars.prot" in template "t.hbs" at line 2, column 12; did you mean "host.vars.port"?');
    expect(e.expected).toBe('a key of host.vars: one of port, label, path');
    expect(e.hint).toBe('if it is optional, test it with {{#if (has "host.vars.prot")}} or read it with {{get "host.vars.prot" fallback}}');
  });

  it('finds the missing segment in the middle of a path, which Handlebars reports as "in undefined"', () => {
    const e = failure(() => render('a\n  {{ host.varz.port }}'));
    expect(e.message).toBe(
      'unknown variable "host.varz.port" in template "t.hbs" at line 2, column 6: "host" has no key "varz"; did you mean "host.vars.port"?',
    );
  });

  it('reports an unknown top-level name', () => {
    const e = failure(() => render('{{hots.name}}'));
    expect(e.message).toBe('unknown variable "hots.name" in template "t.hbs" at line 1, column 3: "hots" is not defined; did you mean "host.name"?');
    expect(e.expected).toBe('a key of the template context: one of host, hosts, params, postgres');
  });

  it('explains a key read from a scalar', () => {
    const e = failure(() => render('{{host.pgdata.dir}}'));
    expect(e.message).toBe(
      'unknown variable "host.pgdata.dir" in template "t.hbs" at line 1, column 3: "host.pgdata" is string "/var/lib/postgresql/15/main", it has no key "dir"',
    );
  });

  it('names the block a path is read in', () => {
    const e = failure(() => render('{{#each hosts}}\n{{name}} {{adress}}\n{{/each}}'));
    expect(e.message).toBe(
      'unknown variable "adress" (inside {{#each hosts}}) in template "t.hbs" at line 2, column 12; did you mean "address"?',
    );
    expect(e.expected).toBe('a key of the {{#each hosts}} item: one of name, address');
    const w = failure(() => render('{{#with host}}{{vars.prot}}{{/with}}'));
    expect(w.message).toBe('unknown variable "vars.prot" (inside {{#with host}}) in template "t.hbs" at line 1, column 17; did you mean "vars.port"?');
    const root = failure(() => render('{{#each hosts}}{{@root.host.nam}}{{/each}}'));
    expect(root.message).toBe('unknown variable "@root.host.nam" in template "t.hbs" at line 1, column 18; did you mean "@root.host.name"?');
  });

  it('finds the one item of a list that lacks a key', () => {
    const e = failure(() => render('{{#each hosts}}{{address}},{{/each}}', { hosts: [{ address: 'a' }, { name: 'b' }] }));
    expect(e.message).toBe('unknown variable "address" (inside {{#each hosts}}) in template "t.hbs" at line 1, column 18');
  });

  it('catches a missing key passed to a helper', () => {
    const e = failure(() => render('x = {{pgconf postgres.settings.shared_bufers}}'));
    expect(e.message).toBe(
      'unknown variable "postgres.settings.shared_bufers" (argument 1 of pgconf) in template "t.hbs" at line 1, column 14; did you mean "postgres.settings.shared_buffers"?',
    );
    const sub = failure(() => render('{{#if (eq params.typ "full")}}x{{/if}}'));
    expect(sub.message).toBe(
      'unknown variable "params.typ" (argument 1 of eq) in template "t.hbs" at line 1, column 11; did you mean "params.type"?',
    );
  });

  it('catches a missing middle segment under {{#if}}, which Handlebars turns into a TypeError', () => {
    const e = failure(() => render('{{#if host.varz.x}}y{{/if}}'));
    expect(e.message).toBe(
      'unknown variable "host.varz.x" in template "t.hbs" at line 1, column 7: "host" has no key "varz"; did you mean "host.vars.x"?',
    );
  });

  it('reports an unknown helper with a suggestion', () => {
    const e = failure(() => render('{{pgcnf 1}}'));
    expect(e.message).toBe('unknown helper "pgcnf" in template "t.hbs" at line 1, column 3; did you mean "pgconf"?');
  });

  it('refuses prototype access and unchecked block parameters', () => {
    expect(failure(() => render('{{host.__proto__}}')).message).toBe('access to "__proto__" is not allowed in template "t.hbs" at line 1, column 3');
    expect(failure(() => render('{{lookup host "x"}}{{host.constructor.name}}')).message).toContain('access to "constructor" is not allowed');
    const bp = failure(() => render('{{#each hosts as |h|}}{{h.adress}}{{/each}}'));
    expect(bp.message).toBe('block parameters (as |h|) are not supported in template "t.hbs" at line 1, column 1');
  });
});

describe('optional keys', () => {
  it('lets {{#if}} test a missing last segment (Handlebars leaves it falsy)', () => {
    expect(render('{{#if host.vars.archive}}yes{{else}}no{{/if}}')).toBe('no');
  });

  it('has, get and default never fail on a missing path', () => {
    expect(render('{{#if (has "host.vars.port")}}yes{{/if}}|{{#if (has "host.nope.deeper")}}yes{{else}}no{{/if}}')).toBe('yes|no');
    expect(render('{{get "host.vars.port" 1}} {{get "host.nope.deeper" 6543}} {{get "host.vars.missing"}}.')).toBe('5432 6543 .');
    expect(render('{{default host.vars.timeout "60s"}} {{default host.vars.port 1}}')).toBe('60s 5432');
    expect(render('{{#each hosts}}{{get "port" 5432}}{{#if (has "@root.params.n")}}!{{/if}} {{/each}}')).toBe('5432! 5432! ');
    expect(render('{{default (get "a.b.c") "fb"}}')).toBe('fb');
  });
});

describe('syntax errors', () => {
  it('name the template, line and column of the offending token', () => {
    const e = failure(() => render('a\n\n  {{#if x}}{{/if'));
    expect(e.message).toMatch(/^template syntax error in template "t\.hbs" at line 3, column 15: expected a name, .* but found "if"$/);
    const close = failure(() => render('x = {{host.name}\n'));
    expect(close.message).toMatch(/^template syntax error in template "t\.hbs" at line 1, column 16: expected "}}", .* but found "}"$/);
    const mismatch = failure(() => render('ok\n{{#if params.n}}x{{/each}}'));
    expect(mismatch.message).toBe("template syntax error in template \"t.hbs\" at line 2, column 4: if doesn't match each");
    const empty = failure(() => render('{{}}'));
    expect(empty.message).toMatch(/^template syntax error in template "t\.hbs" at line 1, column 3: expected a name, .* but found "}}"$/);
  });
});

describe('renderValue', () => {
  it('returns the raw value of a string that is exactly one path', () => {
    const value = {
      retries: '{{params.n}}',
      delta: '{{ params.delta }}',
      list: '{{params.list}}',
      settings: '{{postgres.settings}}',
      text: 'n={{params.n}}',
      nested: [{ dir: '{{host.pgdata}}/conf.d' }, 7, false, null],
      plain: 'no braces',
      whole: '{{this}}',
    };
    const out = r.renderValue(value, ctx, 'step x');
    expect(out).toEqual({
      retries: 3,
      delta: true,
      list: ['a', 'b'],
      settings: { shared_buffers: '128MB', max_connections: 100, hot_standby: true },
      text: 'n=3',
      nested: [{ dir: '/var/lib/postgresql/15/main/conf.d' }, 7, false, null],
      plain: 'no braces',
      whole: ctx,
    });
    expect(r.renderValue('{{json params.list}}', ctx, 'v')).toBe('["a","b"]'); // a helper call renders text
    expect(r.renderValue(42, ctx, 'v')).toBe(42);
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { port: '{{host.vars.port}}' });
    expect(r.renderValue(bare, ctx, 'v')).toEqual({ port: 5432 });
  });

  it('names the key path of a failing value', () => {
    const e = failure(() => r.renderValue({ pgbackrest: { options: ['--type={{params.typ}}'] } }, ctx, 'step backup'));
    expect(e.message).toBe(
      'unknown variable "params.typ" in template "step backup.pgbackrest.options[0]" at line 1, column 10; did you mean "params.type"?',
    );
    const raw = failure(() => r.renderValue({ retries: '{{params.m}}' }, ctx, 'step wait'));
    expect(raw.message).toBe('unknown variable "params.m" in template "step wait.retries" at line 1, column 3; did you mean "params.n"?');
  });
});

describe('helpers', () => {
  it('compare like the condition language', () => {
    expect(render('{{eq params.n 3}} {{eq params.count 7}} {{ne params.type "diff"}} {{eq "a" "b"}}')).toBe('true true true false');
    expect(render('{{lt 1 2}} {{le 2 2}} {{gt 1 2}} {{ge 3 2}} {{lt "abc" "abd"}}')).toBe('true true false true true');
    expect(failure(() => render('{{lt params.list 2}}')).message).toBe(
      'lt: cannot compare list ["a","b"] with number 2 in template "t.hbs" at line 1, column 1',
    );
  });

  it('combine with and/or/not using Python truthiness', () => {
    expect(render('{{and true 1 "x"}} {{and true 0}} {{or 0 "" "x"}} {{or 0 ""}} {{not 0}} {{not "x"}}')).toBe(
      'true false true false true false',
    );
    expect(render('{{#if (and params.delta (not (eq params.type "diff")))}}yes{{/if}}')).toBe('yes');
  });

  it('format values', () => {
    expect(render('{{json params.list}} {{json host.vars 2}}')).toBe(
      '["a","b"] {\n  "port": 5432,\n  "label": "it\'s",\n  "path": "C:\\\\path"\n}',
    );
    expect(render('{{join params.list}}|{{join params.list ":"}}|{{join params.list ""}}')).toBe('a, b|a:b|ab');
    expect(failure(() => render('{{join host.name}}')).message).toBe('join: expects a list, got string "db1" in template "t.hbs" at line 1, column 1');
    expect(render('{{upper "primary"}} {{lower "DB1"}}')).toBe('PRIMARY db1');
    expect(render('x:\n{{indent "a: 1\n\nb: 2" 4}}')).toBe('x:\n    a: 1\n\n    b: 2');
  });

  it('pgconf writes postgresql.conf values', () => {
    expect(render('{{pgconf host.vars.label}}')).toBe("'it''s'");
    expect(render('{{pgconf host.vars.path}}')).toBe("'C:\\\\path'");
    expect(render('{{pgconf 5432}} {{pgconf true}} {{pgconf false}} {{pgconf "128MB"}} {{pgconf params.list}}')).toBe(
      "5432 on off '128MB' 'a,b'",
    );
    expect(render("{{#each postgres.settings}}{{@key}} = {{pgconf this}}\n{{/each}}")).toBe(
      "shared_buffers = '128MB'\nmax_connections = 100\nhot_standby = on\n",
    );
  });

  it('shquote survives a real shell, whatever the bytes', () => {
    expect(render('{{shquote host.vars.label}}')).toBe("'it'\\''s'");
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 30 }).filter((s) => !s.includes('\0')), (s) => {
        const quoted = r.renderString('{{shquote s}}', { s }, 'q');
        expect(execFileSync('sh', ['-c', `printf %s ${quoted}`], { encoding: 'utf8' })).toBe(s);
      }),
      { numRuns: 40 },
    );
  });

  it('conninfo quotes only when libpq needs it', () => {
    expect(render('host={{conninfo "db1"}} password={{conninfo host.vars.label}} dir={{conninfo host.vars.path}} e={{conninfo ""}} s={{conninfo "a b"}}')).toBe(
      "host=db1 password='it\\'s' dir='C:\\\\path' e='' s='a b'",
    );
  });

  it('refuses wrong argument counts', () => {
    expect(failure(() => render('{{pgconf}}')).message).toBe('pgconf takes 1 argument, got 0 in template "t.hbs" at line 1, column 1');
  });
});

describe('output', () => {
  it('does not HTML-escape: quotes, ampersands and angle brackets stay', () => {
    expect(render('{{v}}', { v: `a & b "c" 'd' <e>` })).toBe(`a & b "c" 'd' <e>`);
    expect(render('{{{v}}}', { v: '&' })).toBe('&');
  });

  it('refuses to print an object as [object Object]', () => {
    const e = failure(() => render('port = 1\nsettings = {{postgres.settings}}'));
    expect(e.message).toBe('"postgres.settings" is an object and would print as "[object Object]" in template "t.hbs" at line 2, column 14');
    expect(e.hint).toBe('print one of its keys, or all of it with {{json postgres.settings}}');
    expect(failure(() => render('{{#each hosts}}{{this}}{{/each}}')).message).toBe(
      '"this" is an object and would print as "[object Object]" in template "t.hbs" at line 1, column 18',
    );
    expect(render('{{params.list}}')).toBe('a,b');
  });

  it('compiles a template once and reuses it', () => {
    const fresh = createRenderer({ templateDirs: [] });
    for (let i = 0; i < 5; i++) expect(fresh.renderString('n={{n}}', { n: i }, 'c')).toBe(`n=${i}`);
    expect(fresh.stats).toEqual({ compiled: 1, precompiled: 0, hits: 4 });
    fresh.renderValue({ a: '{{n}}', b: '{{n}}' }, { n: 1 }, 'v');
    expect(fresh.stats.compiled).toBe(2);
    expect(fresh.renderString('plain text', {}, 'p')).toBe('plain text');
    expect(fresh.stats.compiled).toBe(2); // text without {{ is not compiled at all
  });
});

describe('template files', () => {
  let dir: string;
  let first: string;
  let second: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pgplay-render-'));
    first = path.join(dir, 'project');
    second = path.join(dir, 'builtin');
    await mkdir(first);
    await mkdir(second);
    await writeFile(path.join(first, 'pg_hba.conf.hbs'), 'local all all peer # project\n');
    await writeFile(path.join(second, 'pg_hba.conf.hbs'), 'builtin\n');
    await writeFile(path.join(second, 'postgresql.conf.hbs'), "port = {{pgconf host.vars.port}}\ncluster_name = {{pgconf host.name}}\n{{host.vars.nope}}\n");
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves through the template dirs in order, with or without .hbs', async () => {
    const renderer = createRenderer({ templateDirs: [first, second] });
    expect(await renderer.resolveTemplate('pg_hba.conf.hbs')).toBe(path.join(first, 'pg_hba.conf.hbs'));
    expect(await renderer.resolveTemplate('postgresql.conf')).toBe(path.join(second, 'postgresql.conf.hbs'));
    expect(await renderer.resolveTemplate(path.join(second, 'pg_hba.conf.hbs'))).toBe(path.join(second, 'pg_hba.conf.hbs'));
    expect(await renderer.resolveTemplate('missing.hbs')).toBeNull();
    expect(await renderer.resolveTemplate('project')).toBeNull(); // a directory is not a template
    expect(await renderer.renderFile('pg_hba.conf.hbs', ctx)).toBe('local all all peer # project\n');
  });

  it('names the file in render errors and when it is missing', async () => {
    const renderer = createRenderer({ templateDirs: [first, second] });
    await expect(renderer.renderFile('postgresql.conf.hbs', ctx)).rejects.toThrow(
      // outside the working directory the name is absolute; inside it, relative
      `unknown variable "host.vars.nope" in template "${path.join(second, 'postgresql.conf.hbs')}" at line 3, column 3`,
    );
    const e = await renderer.renderFile('nothere.hbs', ctx).then(
      (text) => {
        throw new Error(`expected "template not found", rendered: ${text}`);
      },
      (x: unknown) => x as PgplayError,
    );
    expect(e).toBeInstanceOf(PgplayError);
    expect(e.message).toBe('template "nothere.hbs" not found');
    expect(e.expected).toBe(`a file in ${first}, ${second}`);
  });
});

describe('strict built-in block helpers', () => {
  it('refuse a misspelled list in {{#each}} instead of rendering nothing', () => {
    const e = failure(() => render('{{#each postgres.setings}}{{@key}}{{/each}}'));
    expect(e.message).toBe(
      'unknown variable "postgres.setings" (argument 1 of each) in template "t.hbs" at line 1, column 9; did you mean "postgres.settings"?',
    );
    expect(failure(() => render('{{#with host.var}}{{port}}{{/with}}')).message).toContain('unknown variable "host.var" (argument 1 of with)');
    // null still means "nothing to iterate", and an empty list takes the else branch
    expect(render('{{#each x}}a{{else}}none{{/each}}', { x: null })).toBe('none');
    expect(render('{{#each x}}a{{else}}none{{/each}}', { x: [] })).toBe('none');
  });

  it('lookup reads dynamic keys strictly', () => {
    const c = { hosts: { db1: { address: '10.0.0.11' } }, host: { upstream: 'db1', bad: 'db9' } };
    expect(render('{{lookup (lookup hosts host.upstream) "address"}}', c)).toBe('10.0.0.11');
    expect(render('{{#with (lookup hosts host.upstream)}}{{address}}{{/with}}', c)).toBe('10.0.0.11');
    expect(failure(() => render('{{lookup hosts host.bad}}', c)).message).toBe(
      'lookup: no key "db9" in {"db1":{"address":"10.0.0.11"}}; did you mean "db1"? in template "t.hbs" at line 1, column 1',
    );
    expect(failure(() => render('{{lookup hosts "constructor"}}', c)).message).toContain('access to "constructor" is not allowed');
  });
});
