/**
 * Nothing changes when a later step cannot take its input (engine/preflight-render.ts): before the first
 * step every step that may run is rendered on its hosts with what is known up front, its input checked
 * (schema, Action.validateInput) and its templates found and rendered; a step that cannot be refuses the
 * run with exit 2 naming step and host, under plan too. What only the run can know (a register, a loop
 * over one, a fact a step changes) is checked for structure or left to run time, by declaration.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import type { Action } from '../../src/engine/action.js';
import type { Playbook, Step } from '../../src/model/playbook.js';
import pgpassAction from '../../src/actions/pgpass.js';
import { assertAction } from '../../src/actions/assert.js';
import { harness, results } from './support/engine-harness.js';
import { fileTempDir } from '../support/temp-dirs.js';

/** Renders a template file on apply (as the template action does), and takes a wait that must be seconds. */
const renderAction: Action<{ src?: string; wait?: string; value?: unknown }> = {
  name: 'render',
  summary: 'test: renders a template, takes a wait',
  schema: { type: 'object', additionalProperties: false, properties: { src: { type: 'string' }, wait: { type: 'string' }, value: {} } },
  changes: [],
  templates: (input) => (input.src ? [{ src: input.src }] : []),
  validateInput(input) {
    if (input.wait !== undefined && !/^\d+s$/.test(input.wait)) throw new PgplayError({ code: 'SCHEMA', message: `invalid wait "${input.wait}"`, expected: 'seconds, as 30s' });
  },
  async check() {
    return { changed: true };
  },
  async apply(ctx, input) {
    if (input.src) await ctx.renderTemplate(input.src);
    await ctx.transport.exec(['render', input.src ?? '', input.wait ?? '']);
    return { changed: true };
  },
};

const stop: Step = { id: 'stop', hosts: 'db1', run: { argv: ['stop-the-server'] } };
const execs = (h: ReturnType<typeof harness>) => h.calls.filter((c) => c.kind === 'exec').map((c) => `${c.host}:${c.argv!.join(' ')}`);

function lab(includes: Record<string, Playbook> = {}) {
  return harness(['db1', 'db2'], undefined, 0, [], undefined, { actions: [renderAction], includes, start: true });
}

let dir: string;
beforeAll(async () => {
  dir = fileTempDir('preflight');
  await writeFile(join(dir, 'good.conf.hbs'), 'port = {{host.postgres.port}}\n');
  await writeFile(join(dir, 'typo.conf.hbs'), 'port = {{host.postgres.prot}}\n');
  await writeFile(join(dir, 'broken.conf.hbs'), 'port = {{#if host.postgres.port}}\n');
  await writeFile(join(dir, 'registered.conf.hbs'), 'set = {{chosen.set}}\n');
});

describe('a step that cannot take its input refuses the run before the first change', () => {
  it('a late step reading an unknown variable: exit 2 naming step, host and the variable; the stop never ran', async () => {
    const h = lab();
    const run = h.run({ steps: [stop, { id: 'restore', hosts: 'db1', render: { value: '{{vars.restore_dir}}' } }] });
    expect(await run).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'restore', host: 'db1' } });
    expect((await run).error?.message).toMatch(/step restore on db1: unknown variable "vars.restore_dir"/);
    expect(execs(h)).toEqual([]);
  });

  it('a param with a bad value only a step inside an include reads (its validateInput): refused by run and by plan, nothing ran', async () => {
    const recover: Playbook = { name: 'recover', params: { wait: { type: 'string', default: '60s' } }, steps: [{ id: 'start', render: { wait: '{{params.wait}}' } } as unknown as Step] };
    const procedure = { params: { wait: { type: 'string' as const, default: '60s' } }, steps: [stop, { id: 'recover', hosts: 'db1', include: { playbook: 'recover.yml', params: { wait: '{{params.wait}}' } } }] };
    for (const check of [false, true]) {
      const h = lab({ 'recover.yml': recover });
      const run = h.run(procedure, { check }, { params: { wait: 'fifteen' } });
      expect(await run).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'recover/start', host: 'db1' } });
      expect((await run).error?.message).toMatch('step recover/start on db1: invalid wait "fifteen"');
      expect(execs(h)).toEqual([]);
    }
    const good = lab({ 'recover.yml': recover });
    expect((await good.run(procedure, {}, { params: { wait: '90s' } })).exitCode).toBe(0);
    expect(execs(good)).toEqual(['db1:stop-the-server', 'db1:render  90s']);
  });

  it('a rendered input its schema refuses (a mapping where a string goes) is refused up front', async () => {
    const h = lab();
    const run = h.run({ steps: [stop, { id: 'late', hosts: 'db2', render: { value: 1, wait: '{{params.n}}' } }] }, {}, { params: { n: { minutes: 15 } } });
    expect((await run).error?.message).toMatch(/step late on db2: render input is invalid after rendering: wait: must be string/);
    expect(execs(h)).toEqual([]);
  });

  it('a template that is missing, names an unknown variable or does not compile: refused naming it; one that renders runs', async () => {
    for (const [src, says] of [
      [join(dir, 'missing.conf.hbs'), 'template "'],
      [join(dir, 'typo.conf.hbs'), 'unknown variable "host.postgres.prot"'],
      [join(dir, 'broken.conf.hbs'), 'broken.conf.hbs'],
    ] as const) {
      const h = lab();
      const run = h.run({ steps: [stop, { id: 'conf', hosts: 'db2', render: { src } }] });
      expect(await run).toMatchObject({ exitCode: 2, error: { code: 'RENDER', step: 'conf', host: 'db2' } });
      expect((await run).error?.message).toMatch(says);
      expect(execs(h)).toEqual([]);
    }
    const h = lab();
    expect((await h.run({ steps: [stop, { id: 'conf', hosts: 'db2', render: { src: join(dir, 'good.conf.hbs') } }] })).exitCode).toBe(0);
    expect(execs(h)).toEqual(['db1:stop-the-server', `db2:render ${join(dir, 'good.conf.hbs')} `]);
  });

  it('every failing step and host is listed in one refusal', async () => {
    const h = lab();
    const run = h.run({ steps: [stop, { id: 'a', hosts: 'all', render: { value: '{{vars.nope}}' } }, { id: 'b', hosts: 'db2', render: { wait: 'soon' } }] });
    expect((await run).error?.message).toMatch(/3 steps cannot take their input; nothing was changed:\nstep a on db1: .*\nstep a on db2: .*\nstep b on db2: invalid wait "soon"/);
  });
});

describe('what only the run can know is decided by declarations', () => {
  it('a value reading what an earlier step registers is not rendered up front (a template file too); the run renders it when it has it', async () => {
    const h = lab();
    const outcome = await h.run({
      steps: [
        { id: 'choose', hosts: 'db1', run: { argv: ['choose'] }, register: 'chosen' },
        { id: 'use', hosts: 'db1', render: { value: '{{chosen.rc}}', src: join(dir, 'registered.conf.hbs') } },
      ],
    });
    // Up front it passed; at run time the template reads chosen.set, which `run` does not register.
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['choose@db1=changed', 'use@db1=failed']);
    expect(outcome.error?.message).toContain('chosen.set');
  });

  it('a value reading a name no earlier step registers (nor the context holds) is refused: a typo of a register', async () => {
    const h = lab();
    const run = h.run({
      steps: [
        { id: 'choose', hosts: 'db1', run: { argv: ['choose'] }, register: 'chosen' },
        { id: 'use', hosts: 'db1', render: { value: '{{choosen.rc}} {{chosen.rc}}' } },
      ],
    });
    expect((await run).error?.message).toMatch(/step use on db1: it reads "choosen", which no step before it registers/);
    expect(execs(h)).toEqual([]);
  });

  it('a step whose when is false up front is not checked; one whose when reads a register may run, so it is', async () => {
    const h = lab();
    const outcome = await h.run({ steps: [stop, { id: 'never', hosts: 'db1', when: "params.mode == 'other'", render: { value: '{{vars.nope}}' } }] }, {}, { params: { mode: 'this' } });
    expect(outcome.exitCode).toBe(0);
    const later = lab();
    const run = later.run({
      steps: [
        { id: 'choose', hosts: 'db1', run: { argv: ['choose'] }, register: 'chosen' },
        { id: 'maybe', hosts: 'db1', when: 'chosen.rc == 0', render: { wait: 'soon' } },
      ],
    });
    expect((await run).error?.message).toMatch('step maybe on db1: invalid wait "soon"');
    expect(execs(later)).toEqual([]);
  });

  it('an include param rendered from a register is known only at run time: the steps reading it are checked for structure only', async () => {
    const restore: Playbook = { name: 'restore', params: { set: { type: 'string', required: true } }, steps: [{ id: 'restore', render: { value: '{{params.set}}' } }, { id: 'typo', render: { value: '{{vars.nope}}' } }] as unknown as Step[] };
    const steps: Step[] = [
      { id: 'choose', hosts: 'db1', run: { argv: ['choose'] }, register: 'chosen' },
      { id: 'tool', hosts: 'db1', include: { playbook: 'restore.yml', params: { set: "{{lookup (lookup (lookup hosts 'db1') 'registered') 'chosen'}}" } } },
    ];
    const h = lab({ 'restore.yml': restore });
    expect((await h.run({ steps })).error?.message).toMatch(/a step cannot take its input; nothing was changed:\nstep tool\/typo on db1: unknown variable "vars.nope" in template/);
    expect(execs(h)).toEqual([]);
  });

  it('a value reading facts that fails with the facts read at start is left to run time (the steps before it change them)', async () => {
    const h = lab();
    const outcome = await h.run({ steps: [stop, { id: 'after', hosts: 'db1', render: { value: '{{facts.system_identifier}}' } }] });
    // Up front it passed; the fake facts never get a system identifier, so the step fails when it runs.
    expect(results(h.events)).toEqual(['stop@db1=changed', 'after@db1=failed']);
    expect(outcome.exitCode).toBe(1);
  });

  it('a fence that is a guard (it changes something) waits for the pre-flight: a late step that cannot render refuses the run before the fence runs', async () => {
    // A procedure that stops the primary as its first step, a guard so that --from and --resume cannot
    // pass it by: before, guards ran ahead of the pre-flight ("guards only read"), so the primary was
    // stopped and the run then refused with "nothing was changed".
    for (const check of [false, true]) {
      const h = lab();
      const run = h.run({ steps: [{ ...stop, guard: true }, { id: 'restore', hosts: 'db1', render: { value: '{{vars.restore_dir}}' } }] }, { check });
      expect(await run).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'restore', host: 'db1' } });
      expect(results(h.events)).toEqual([]);
      expect(execs(h)).toEqual([]);
    }
  });

  it('a guard that only reads still runs before the pre-flight and refuses with its own message', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, { actions: [renderAction, assertAction as Action<any>], start: true });
    const steps: Step[] = [
      { id: 'is-primary', guard: true, hosts: 'db1', assert: { that: ['false'], msg: 'db1 is not the primary' } },
      { ...stop, guard: true },
      { id: 'restore', hosts: 'db1', render: { value: '{{vars.restore_dir}}' } },
    ];
    const outcome = await h.run({ steps });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['is-primary@db1=failed']);
    expect(h.events.some((e) => e.type === 'step-result' && (e as { msg?: string }).msg?.includes('db1 is not the primary'))).toBe(true);
    expect(execs(h)).toEqual([]);
  });

  it('steps --from passes by are not checked (they do not run); a guard before it runs on its own', async () => {
    const h = lab();
    const steps: Step[] = [{ id: 'early', hosts: 'db1', render: { value: '{{vars.nope}}' } }, stop];
    expect((await h.run({ steps }, { from: 'stop' })).exitCode).toBe(0);
    // A guard before it runs all the same, and may change something (its action is not read-only): the
    // pre-flight comes before it and checks it too, refusing the run before anything ran.
    const guarded = lab();
    const outcome = await guarded.run({ steps: [{ ...steps[0]!, guard: true }, stop] }, { from: 'stop' });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid', error: { code: 'RENDER', step: 'early', host: 'db1' } });
    expect(results(guarded.events)).toEqual([]);
    expect(execs(guarded)).toEqual([]);
  });
});

describe('shipped actions say what of their input is wrong before the run changes anything (Action.validateInput)', () => {
  it('standby-build.yml stops the standby and restores over it before its pgpass step: a pgpass entry with no user (no replication.user) now refuses first', async () => {
    const h = harness(['db1', 'db2'], () => ({ exitCode: 0 }), 0, [], undefined, { actions: [pgpassAction], start: true });
    const outcome = await h.run({
      steps: [
        { id: 'stop', hosts: 'db2', run: { argv: ['stop-and-restore'] } },
        { id: 'pgpass', hosts: 'db2', pgpass: { entries: [{ host: 'db1', database: 'replication' }] } },
      ],
    });
    expect(outcome).toMatchObject({ exitCode: 2, status: 'invalid' });
    expect(outcome.error?.message).toContain('step pgpass on db2: pgpass.entries[0] has no user and the inventory has no replication.user');
    expect(execs(h)).toEqual([]);
  });
});
