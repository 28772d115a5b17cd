import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';


describe('include', () => {
  it('runs the included playbook with typed, defaulted params, reporting its steps under the include id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgplay-include-'));
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

  it("gives the included steps the included playbook's own vars, rendered with its params, and the parent's back after it", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgplay-include-vars-'));
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
});
