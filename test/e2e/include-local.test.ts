import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { fileTempDir } from '../support/temp-dirs.js';


describe('include', () => {
  it('runs the included playbook with typed, defaulted params, reporting its steps under the include id', async () => {
    const dir = fileTempDir('include');
    const out = join(dir, 'out.txt');
    await writeFile(join(dir, 'inventory.yml'), `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg }\n`);
    await writeFile(
      join(dir, 'child.yml'),
      `name: child\nparams:\n  word: { type: string }\n  n: { type: integer, default: 2 }\nsteps:\n  - id: write\n    hosts: all\n    command: { shell: "echo {{params.word}}-{{params.n}} > ${out}", creates: ${out} }\n`,
    );
    await writeFile(join(dir, 'parent.yml'), `name: parent\nsteps:\n  - id: inc\n    include: { playbook: child.yml, params: { word: hello } }\n`);
    const run = await runCli(['run', join(dir, 'parent.yml'), '--output', 'json']);
    expect(run.exitCode).toBe(0);
    const results = run.stdout.split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step-result');
    expect(results.map((e) => `${e.step}=${e.status}`)).toEqual(['inc/write=changed']);
    expect(await readFile(out, 'utf8')).toBe('hello-2\n');

    await writeFile(join(dir, 'bad.yml'), `name: bad\nsteps:\n  - id: inc\n    include: { playbook: child.yml, params: { word: hi, n: lots } }\n`);
    const bad = await runCli(['run', join(dir, 'bad.yml')]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stdout).toContain('step inc: param "n": value "lots" is not an integer');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it("loop repeats an include once per item, each item's steps under <id>[<index>]/, and --resume skips the items done", async () => {
    const dir = fileTempDir('include-loop');
    const gate = join(dir, 'gate');
    await writeFile(join(dir, 'inventory.yml'), `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg }\n`);
    // The item "b" fails until the gate file exists.
    await writeFile(
      join(dir, 'child.yml'),
      `name: child\nparams:\n  word: { type: string }\nsteps:\n  - id: write\n    hosts: all\n    command: { shell: "test {{params.word}} != b || test -e ${gate} && echo {{params.word}} >> ${dir}/out-{{params.word}}" }\n`,
    );
    await writeFile(
      join(dir, 'parent.yml'),
      'name: parent\nsteps:\n  - id: words\n    hosts: db1\n    command: { argv: [printf, "a\\nb\\nc\\n"], changed_when: false }\n    register: words\n' +
        '  - id: each\n    hosts: db1\n    loop: "{{words.stdout_lines}}"\n    when: item != \'c\'\n    include: { playbook: child.yml, params: { word: "{{item}}" } }\n',
    );
    const stepResults = (stdout: string) =>
      stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((e) => e.type === 'step-result').map((e) => `${e.step}=${e.status}`);

    const first = await runCli(['run', join(dir, 'parent.yml'), '--output', 'json']);
    expect(first.exitCode, first.stdout).toBe(1);
    expect(stepResults(first.stdout)).toEqual(['words=ok', 'each[0]/write=changed', 'each[1]/write=failed']);
    expect(await readFile(join(dir, 'out-a'), 'utf8')).toBe('a\n');

    await writeFile(gate, '');
    const resumed = await runCli(['run', join(dir, 'parent.yml'), '--output', 'json', '--resume']);
    expect(resumed.exitCode, resumed.stdout).toBe(0);
    // "c" is passed by by the include's when, which sees the item.
    expect(stepResults(resumed.stdout)).toEqual(['words=skipped', 'each[0]/write=skipped', 'each[1]/write=changed']);
    expect(await readFile(join(dir, 'out-a'), 'utf8')).toBe('a\n');
    expect(await readFile(join(dir, 'out-b'), 'utf8')).toBe('b\n');
    await expect(readFile(join(dir, 'out-c'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("gives the included steps the included playbook's own vars, rendered with its params, and the parent's back after it", async () => {
    const dir = fileTempDir('include-vars');
    const out = join(dir, 'out.txt');
    await writeFile(join(dir, 'inventory.yml'), `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg }\n`);
    await writeFile(
      join(dir, 'child.yml'),
      `name: child\nparams:\n  word: { type: string }\nvars:\n  said: "child says {{params.word}}"\nsteps:\n  - id: write\n    hosts: all\n    command: { shell: "echo '{{vars.said}}' >> ${out}" }\n`,
    );
    await writeFile(
      join(dir, 'parent.yml'),
      `name: parent\nvars:\n  said: parent says hi\nsteps:\n  - id: inc\n    include: { playbook: child.yml, params: { word: hello } }\n  - id: after\n    hosts: all\n    command: { shell: "echo '{{vars.said}}' >> ${out}" }\n`,
    );
    const run = await runCli(['run', join(dir, 'parent.yml'), '--output', 'json']);
    expect(run.exitCode, run.stdout).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('child says hello\nparent says hi\n');
  });

  it('an included playbook includes relative to itself, and its steps without hosts run where the include step said, rendered with the includer\'s params', async () => {
    // The shape of standby-build.yml including backup/pgbackrest/conf.yml: inc/mid.yml includes leaf.yml (beside
    // it, not beside the top playbook) on "{{params.host}}", a param leaf.yml does not have.
    const dir = fileTempDir('include-nested');
    const out = join(dir, 'out.txt');
    await mkdir(join(dir, 'inc'));
    await writeFile(
      join(dir, 'inventory.yml'),
      `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg1 }\n  db2: { address: 127.0.0.1, role: standby, upstream: db1, postgres: { port: 5499 }, pgdata: ${dir}/pg2 }\n`,
    );
    await writeFile(join(dir, 'inc', 'leaf.yml'), `name: leaf\nsteps:\n  - id: write\n    command: { shell: "echo leaf on {{host.name}} >> ${out}" }\n`);
    await writeFile(
      join(dir, 'inc', 'mid.yml'),
      'name: mid\nparams:\n  host: { type: string, required: true }\nsteps:\n  - id: leaf\n    hosts: "{{params.host}}"\n    include: { playbook: leaf.yml }\n',
    );
    await writeFile(join(dir, 'parent.yml'), 'name: parent\nsteps:\n  - id: mid\n    include: { playbook: inc/mid.yml, params: { host: db2 } }\n');
    const run = await runCli(['run', join(dir, 'parent.yml'), '--output', 'json']);
    expect(run.exitCode, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('leaf on db2\n');
  });
});
