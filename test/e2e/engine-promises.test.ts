import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { fileTempDir } from '../support/temp-dirs.js';

/**
 * What the core promises a DBA, through the CLI, on local hosts running plain commands (no PostgreSQL
 * needed): loops, truthful exit codes, include as an engine construct, and errors machines can read.
 */


interface Event {
  type: string;
  step?: string;
  host?: string;
  status?: string;
  msg?: string;
  item?: unknown;
  index?: number;
  exitCode?: number;
  error?: Record<string, unknown> & { code?: string; command?: { argv?: string[]; rc?: number; stderrTail?: string[] } };
  errors?: Array<Record<string, unknown>>;
}

let dir: string;
let stateDir: string;
let inventory: string;

beforeEach(async () => {
  dir = fileTempDir('promises');
  stateDir = join(dir, 'state');
  inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    [
      'cluster: promises',
      'postgres: { version: 15 }',
      'connection: { transport: local }',
      'hosts:',
      `  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/db1 }`,
      `  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: ${dir}/db2, postgres: { port: 5433 } }`,
      '',
    ].join('\n'),
  );
});

async function pgplay(args: string[]) {
  return execa('node', [CLI, ...args], { reject: false, env: { CI: 'true', PGPLAY_STATE_DIR: stateDir }, timeout: 60_000 });
}

async function playbook(name: string, lines: string[]): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, lines.join('\n') + '\n');
  return file;
}

function events(stdout: string): Event[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Event);
}

const results = (evs: Event[]) => evs.filter((e) => e.type === 'step-result');
const runEnd = (evs: Event[]) => evs.find((e) => e.type === 'run-end');

async function journalRecords(): Promise<Array<Event & { name?: string; value?: unknown }>> {
  // The newest journal by when it was written: ids of runs started in the same second sort by their random suffixes.
  const runs = join(stateDir, 'runs');
  const files = await Promise.all((await readdir(runs)).map(async (f) => ({ f, at: (await stat(join(runs, f))).mtimeMs })));
  const newest = files.sort((a, b) => a.at - b.at).at(-1)!.f;
  const text = await readFile(join(runs, newest), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l));
}

describe('loop', () => {
  it('runs a step once per item of a registered list, with {{item}} and {{item_index}} in templates and when', async () => {
    const out = join(dir, 'log');
    const pb = await playbook('loop.yml', [
      'name: loop',
      'steps:',
      '  - id: list',
      '    hosts: db1',
      '    command: { argv: [printf, "x\\ny\\n"], changed_when: false }',
      '    register: found',
      '  - id: each',
      '    hosts: db1',
      '    loop: "{{found.stdout_lines}}"',
      `    command: { shell: "echo {{item_index}}:{{item}} >> ${out}" }`,
      '    register: each',
      '  - id: literal',
      '    hosts: db1',
      '    loop: [a, b, c]',
      "    when: item != 'b'",
      `    command: { argv: [touch, "${dir}/lit-{{item}}"], creates: "${dir}/lit-{{item}}" }`,
      '  - id: collected',
      '    hosts: db1',
      "    assert: { that: [\"length(each.results) == 2\", \"each.changed\", \"not each.failed\", \"each.results[1].item == 'y'\", \"each.results[1].item_index == 1\", \"each.results[0].rc == 0\"] }",
    ]);
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const got = results(events(run.stdout)).map((e) => `${e.step}${e.index === undefined ? '' : `[${e.index}=${e.item}]`}=${e.status}`);
    expect(got).toEqual([
      'list=ok',
      'each[0=x]=changed',
      'each[1=y]=changed',
      'literal[0=a]=changed',
      'literal[1=b]=skipped',
      'literal[2=c]=changed',
      'collected=ok',
    ]);
    expect(await readFile(out, 'utf8')).toBe('0:x\n1:y\n');
    expect(existsSync(join(dir, 'lit-a')) && existsSync(join(dir, 'lit-c')) && !existsSync(join(dir, 'lit-b'))).toBe(true);

    // Human output names the item of each line.
    const human = await pgplay(['run', pb, '-i', inventory]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/ok\s+db1 \[0: a\]/);
    expect(human.stdout).toMatch(/skipped\s+db1 \[1: b\]/);

  });

  it('check mode checks item by item and changes nothing', async () => {
    const pb = await playbook('plan-loop.yml', [
      'name: plan-loop',
      'steps:',
      '  - id: each',
      '    hosts: db1',
      '    loop: [x, y]',
      `    command: { argv: [touch, "${dir}/{{item}}"], creates: "${dir}/x" }`,
    ]);
    await writeFile(join(dir, 'x'), '');
    const plan = await pgplay(['plan', pb, '-i', inventory, '--output', 'json']);
    expect(plan.exitCode).toBe(0);
    const planned = results(events(plan.stdout));
    expect(planned.map((e) => `${e.index}=${e.item}:${e.status}`)).toEqual(['0=x:ok', '1=y:ok']);
    await rm(join(dir, 'x'));
    const again = await pgplay(['plan', pb, '-i', inventory, '--output', 'json']);
    const replanned = results(events(again.stdout));
    expect(replanned.map((e) => `${e.index}:${e.status}`)).toEqual(['0:changed', '1:changed']);
    expect(replanned[1]!.msg).toBe(`would run: touch ${dir}/y`);
    expect(existsSync(join(dir, 'x')) || existsSync(join(dir, 'y'))).toBe(false);
  });

  it('journals each item; a resumed run skips the items that succeeded and runs the rest', async () => {
    const ran = join(dir, 'ran');
    const pb = await playbook('resume-loop.yml', [
      'name: resume-loop',
      'steps:',
      '  - id: each',
      '    hosts: db1',
      '    loop: [one, two, three]',
      `    command: { shell: "test {{item}} != two || test -e ${dir}/allow || exit 4; echo {{item}} >> ${ran}" }`,
      '    register: each',
      '  - id: after',
      '    hosts: db1',
      '    assert: { that: ["length(each.results) == 3", "not each.failed"] }',
    ]);
    const first = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(first.exitCode).toBe(1);
    expect(results(events(first.stdout)).map((e) => `${e.step}[${e.index}]=${e.status}`)).toEqual(['each[0]=changed', 'each[1]=failed', 'each[2]=changed']);
    expect(await readFile(ran, 'utf8')).toBe('one\nthree\n');
    const journaled = (await journalRecords()).filter((r) => r.type === 'step-result');
    expect(journaled.map((r) => `${r.index}:${r.item}:${r.status}`)).toEqual(['0:one:changed', '1:two:failed', '2:three:changed']);

    await writeFile(join(dir, 'allow'), '');
    const resumed = await pgplay(['run', pb, '-i', inventory, '--resume', '--output', 'json']);
    expect(resumed.exitCode).toBe(0);
    expect(results(events(resumed.stdout)).map((e) => `${e.step}${e.index === undefined ? '' : `[${e.index}]`}=${e.status}`)).toEqual([
      'each[0]=skipped',
      'each[1]=changed',
      'each[2]=skipped',
      'after=ok',
    ]);
    expect(await readFile(ran, 'utf8')).toBe('one\nthree\ntwo\n');
  });

  it('a loop that does not render to a list is an error naming the step', async () => {
    const pb = await playbook('bad-loop.yml', ['name: bad', 'steps:', '  - id: each', '    hosts: db1', '    loop: "{{params}}"', '    command: { argv: [echo, "{{item}}"] }']);
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.exitCode).toBe(2);
    expect(runEnd(events(run.stdout))!.error).toMatchObject({ step: 'each', host: 'db1', expected: 'a list' });
  });
});

describe('exit codes tell the truth', () => {
  it('a render error after a step ran is exit 1, journaled, and resumable once fixed', async () => {
    // The second value reads what the first step registers, so the pre-flight leaves it to run time.
    const marker = join(dir, 'first');
    const lines = (value: string) => [
      'name: late-render',
      `vars: ${value}`,
      'steps:',
      '  - id: first',
      '    hosts: db1',
      `    command: { argv: [touch, ${marker}], creates: ${marker} }`,
      '    register: made_first',
      '  - id: second',
      '    hosts: db1',
      `    command: { argv: [touch, "${dir}/{{vars.second}}{{#if made_first.changed}}{{/if}}"] }`,
    ];
    const pb = await playbook('late.yml', lines('{}'));
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.exitCode).toBe(1);
    const end = runEnd(events(run.stdout))!;
    expect(end).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(end.error).toMatchObject({ code: 'RENDER', step: 'second', host: 'db1' });
    expect((await journalRecords()).at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1 });

    await playbook('late.yml', lines('{ second: made }'));
    const resumed = await pgplay(['run', pb, '-i', inventory, '--resume', '--output', 'json']);
    expect(resumed.exitCode).toBe(0);
    expect(results(events(resumed.stdout)).map((e) => `${e.step}=${e.status}`)).toEqual(['first=skipped', 'second=changed']);
    expect(existsSync(join(dir, 'made'))).toBe(true);
  });

  it('a render error before anything ran stays exit 2', async () => {
    const pb = await playbook('early.yml', ['name: early', 'steps:', '  - id: first', '    hosts: db1', '    command: { argv: [echo, "{{vars.nope}}"] }']);
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.exitCode).toBe(2);
    expect(runEnd(events(run.stdout))).toMatchObject({ status: 'invalid', exitCode: 2 });
  });

  it('--tags or --limit that select nothing are errors before anything runs', async () => {
    const marker = join(dir, 'ran');
    const pb = await playbook('select.yml', [
      'name: select',
      'steps:',
      '  - id: backup',
      '    hosts: primary',
      '    tags: [backup]',
      `    command: { argv: [touch, ${marker}] }`,
    ]);
    const tags = await pgplay(['run', pb, '-i', inventory, '--tags', 'backpu']);
    expect(tags.exitCode).toBe(2);
    expect(tags.stderr).toContain('--tags: no step has the tag "backpu"; did you mean "backup"?');
    const limit = await pgplay(['run', pb, '-i', inventory, '--limit', 'db2']);
    expect(limit.exitCode).toBe(2);
    expect(limit.stderr).toContain('--limit db2: no step of');
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(stateDir, 'runs'))).toBe(false);

    // A role is a valid --limit: it stands for its hosts.
    const role = await pgplay(['run', pb, '-i', inventory, '--limit', 'primary', '--tags', 'backup']);
    expect(role.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });
});

describe('include is an engine construct', () => {
  it('a handler with include is rejected at load time with its position', async () => {
    await playbook('child.yml', ['name: child', 'steps:', '  - id: c', '    command: { argv: ["true"] }']);
    const pb = await playbook('handler-include.yml', [
      'name: handler-include',
      'steps:',
      '  - id: s',
      '    hosts: db1',
      '    command: { argv: ["true"] }',
      '    notify: [again]',
      'handlers:',
      '  again:',
      '    hosts: db1',
      '    include: { playbook: child.yml }',
    ]);
    const validate = await pgplay(['validate', pb]);
    expect(validate.exitCode).toBe(2);
    expect(validate.stderr).toContain(`${pb}:10:5: handler again: include cannot run as a handler`);
    const run = await pgplay(['run', pb, '-i', inventory]);
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toBe('');
  });

  it('the published schema offers include on steps only, and no include action exists', async () => {
    const schema = JSON.parse((await pgplay(['schema', 'playbook'])).stdout) as {
      definitions: { step: { properties: Record<string, unknown> }; handler: { properties: Record<string, unknown> } };
    };
    expect(schema.definitions.step.properties.include).toBeDefined();
    expect(schema.definitions.handler.properties.include).toBeUndefined();
    // A step with include and another action is still two actions.
    const pb = await playbook('two.yml', ['name: two', 'steps:', '  - id: s', '    hosts: db1', '    include: { playbook: x.yml }', '    command: { argv: ["true"] }']);
    const validate = await pgplay(['validate', pb]);
    expect(validate.exitCode).toBe(2);
    expect(validate.stderr).toContain('step s has more than one action: include, command');
  });
});

describe('errors for machines', () => {
  it('a failed command carries expected, rc, stderr tail and its redacted argv in events and the journal', async () => {
    const pb = await playbook('fail.yml', [
      'name: fail',
      'steps:',
      '  - id: boom',
      '    hosts: db1',
      '    command: { argv: [sh, -c, "echo first >&2; echo boom >&2; exit 3", "host=db1 password=hunter2"] }',
    ]);
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.exitCode).toBe(1);
    const evs = events(run.stdout);
    const want = {
      code: 'STEP_FAILED',
      expected: 'rc 0',
      command: { rc: 3, stderrTail: ['first', 'boom'], argv: ['sh', '-c', 'echo first >&2; echo boom >&2; exit 3', 'host=db1 password=********'] },
    };
    expect(results(evs)[0]!.error).toMatchObject(want);
    expect(runEnd(evs)!.error).toMatchObject({ ...want, step: 'boom', host: 'db1' });
    expect(run.stdout).not.toContain('hunter2');
    const journal = await journalRecords();
    expect(journal.find((r) => r.type === 'step-result')!.error).toMatchObject(want);
    expect(JSON.stringify(journal)).not.toContain('hunter2');
    // People see what was expected too.
    const human = await pgplay(['run', pb, '-i', inventory]);
    expect(human.stdout).toContain('failed   db1 ');
    expect(human.stdout).toContain('sh exited with rc 3: first\nboom (expected rc 0)');
  });

  it('--output json prints load and validation errors as a JSON error event', async () => {
    const pb = await playbook('invalid.yml', ['name: invalid', 'steps:', '  - id: s', '    hosts: db1', '    command: { argv: ["true"] }', '    retries: lots']);
    const run = await pgplay(['run', pb, '-i', inventory, '--output', 'json']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toBe('');
    const [event, ...rest] = events(run.stdout);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({ type: 'error', exitCode: 2 });
    expect(event!.errors![0]).toMatchObject({ code: 'SCHEMA', step: 's', position: { file: pb, line: 6, col: 14 } });

    const usage = await pgplay(['run', pb, '-i', inventory, '--output', 'json', '--forks', 'zero']);
    expect(usage.exitCode).toBe(2);
    expect(events(usage.stdout)[0]).toMatchObject({ type: 'error', exitCode: 2, errors: [{ code: 'USAGE' }] });
  });
});
