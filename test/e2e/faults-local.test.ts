import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATOMIC_WRITE_SCRIPT } from '../../src/transports/file-commands.js';
import { journals, localRig, results, type LocalRig } from './faults-support.js';

/**
 * Faults that need only this machine: a step that outlives its timeout, and a configuration write
 * into a directory that became read-only (a real read-only tmpfs). Each must fail with exit 1 naming
 * the step and host, be journaled, leave no partial or temporary file, and --resume once the cause
 * is gone must complete the run.
 */
let rig: LocalRig;

beforeAll(async () => {
  rig = await localRig('faults');
});

afterAll(async () => {
  await rm(rig.dir, { recursive: true, force: true });
});

describe('a step timeout', () => {
  let playbook: string;
  const marker = () => join(rig.dir, 'out', 'slow-done');

  beforeAll(async () => {
    playbook = await rig.playbook('slow.yml', [
      'name: slow',
      'steps:',
      '  - id: first',
      '    hosts: h1',
      `    command: { argv: [touch, ${join(rig.dir, 'out', 'first')}] }`,
      '  - id: slow',
      '    hosts: h1',
      `    command: { shell: "sleep 3 && touch ${marker()}" }`,
      '  - id: last',
      '    hosts: h1',
      `    command: { argv: [touch, ${join(rig.dir, 'out', 'last')}] }`,
    ]);
  });

  it('fails with exit 1 naming step and host, kills the command, and is journaled', async () => {
    const started = Date.now();
    const r = await rig.pgplay(['run', playbook, '--timeout', '1s']);
    expect(r.exitCode).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.stdout).toMatch(/\nstep slow, host h1: .*timed out after 1(\.0)?s/);
    expect(existsSync(join(rig.dir, 'out', 'last'))).toBe(false);
    // The command was stopped, not abandoned: its marker never appears.
    await new Promise((res) => setTimeout(res, 3000));
    expect(existsSync(marker())).toBe(false);

    const [journal] = await journals(rig.stateDir);
    expect(results(journal!.lines)).toEqual(['first@h1=changed', 'slow@h1=failed']);
    const failed = journal!.lines.find((l) => l.type === 'step-result' && l.step === 'slow')!;
    expect(failed.error).toMatchObject({ code: 'TIMEOUT' });
    expect(journal!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'slow', host: 'h1', code: 'TIMEOUT' } });
  });

  it('--resume with a longer timeout completes the run', async () => {
    const r = await rig.pgplay(['run', playbook, '--resume', '--timeout', '30s']);
    expect(r.exitCode).toBe(0);
    const all = await journals(rig.stateDir);
    expect(results(all.at(-1)!.lines)).toEqual(['first@h1=skipped', 'slow@h1=changed', 'last@h1=changed']);
    expect(existsSync(marker())).toBe(true);
    expect(existsSync(join(rig.dir, 'out', 'last'))).toBe(true);
  });
});

describe('a configuration write to a read-only directory', () => {
  let mount: string;
  let playbook: string;
  let mounted = false;
  const conf = () => join(mount, 'conf', 'app.conf');

  beforeAll(async () => {
    mount = join(rig.dir, 'ro');
    await mkdir(mount);
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'tmpfs', mount]);
    mounted = true;
    await mkdir(join(mount, 'conf'));
    await writeFile(conf(), 'setting = old\n');
    await execa('mount', ['-o', 'remount,ro', mount]);
    await mkdir(join(rig.dir, 'templates'), { recursive: true });
    await writeFile(join(rig.dir, 'templates', 'app.conf.hbs'), 'setting = {{params.value}}\n');
    playbook = await rig.playbook('config.yml', [
      'name: config',
      'params:',
      '  value: { type: string, default: new }',
      'steps:',
      '  - id: prepare',
      '    hosts: all',
      `    command: { argv: [touch, "${join(rig.dir, 'out')}/prepared-{{host.name}}"] }`,
      '  - id: config',
      '    hosts: h1',
      `    template: { src: app.conf.hbs, dest: ${conf()}, mode: "0640" }`,
      '  - id: after',
      '    hosts: all',
      `    command: { argv: [touch, "${join(rig.dir, 'out')}/after-{{host.name}}"] }`,
    ]);
  });

  afterAll(async () => {
    if (mounted) await execa('umount', ['-l', mount], { reject: false });
  });

  it('fails with exit 1 naming step and host; the old file is intact and no temp file is left', async () => {
    const r = await rig.pgplay(['run', playbook]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`\\nstep config, host h1: .*${conf().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(EROFS|read-only file system)`, 'i'));
    expect(await readFile(conf(), 'utf8')).toBe('setting = old\n');
    expect(await readdir(join(mount, 'conf'))).toEqual(['app.conf']);
    expect(existsSync(join(rig.dir, 'out', 'after-h1'))).toBe(false);

    const journal = (await journals(rig.stateDir)).find((j) => j.lines[0]!.type === 'journal' && results(j.lines).some((x) => x.startsWith('config@')))!;
    expect(results(journal.lines)).toEqual(['prepare@h1=changed', 'prepare@h2=changed', 'config@h1=failed']);
    expect(journal.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'config', host: 'h1' } });
  });

  it('--resume after remounting read-write completes the run', async () => {
    await execa('mount', ['-o', 'remount,rw', mount]);
    const r = await rig.pgplay(['run', playbook, '--resume']);
    expect(r.exitCode).toBe(0);
    const all = await journals(rig.stateDir);
    expect(results(all.at(-1)!.lines)).toEqual([
      'prepare@h1=skipped', 'prepare@h2=skipped', 'config@h1=changed', 'after@h1=changed', 'after@h2=changed',
    ]);
    expect(await readFile(conf(), 'utf8')).toBe('setting = new\n');
    // The new file and the kept previous version; nothing half-written.
    const files = await readdir(join(mount, 'conf'));
    expect(files.filter((f) => f.includes('pgplay-tmp'))).toEqual([]);
    expect(files).toContain('app.conf');
  });
});

describe('the atomic write script when its data ends early', () => {
  it('refuses a short write (a lost connection looks like the end of stdin) and leaves the old file alone', async () => {
    const dest = join(rig.dir, 'out', 'short.conf');
    await writeFile(dest, 'old\n');
    const write = (data: string, size: string) =>
      execa('sh', ['-c', ATOMIC_WRITE_SCRIPT, 'pgplay-write', dest, '0600', '', '', '1', '.pgplay-prev', size], { input: data, reject: false });
    const short = await write('new cont', '12');
    expect(short.exitCode).toBe(1);
    expect(short.stderr).toBe(`incomplete data: received 8 of 12 bytes; ${dest} was left as it was`);
    expect(await readFile(dest, 'utf8')).toBe('old\n');
    expect((await readdir(join(rig.dir, 'out'))).filter((f) => f.includes('short'))).toEqual(['short.conf']);

    const whole = await write('new content\n', '12');
    expect(whole.exitCode).toBe(0);
    expect(await readFile(dest, 'utf8')).toBe('new content\n');
    expect((await readdir(join(rig.dir, 'out'))).filter((f) => f.includes('short')).sort()).toEqual(['short.conf', 'short.conf.pgplay-prev']);
  });

  it('finds the directory and the name in the path itself (no dirname, basename), through a link too; a path ending in / is no file', async () => {
    const out = join(rig.dir, 'out');
    const write = (dest: string, data: string) =>
      execa('sh', ['-c', ATOMIC_WRITE_SCRIPT, 'pgplay-write', dest, '0640', '', '', '', '.pgplay-prev', String(data.length)], { input: data, reject: false });
    expect((await write(`${out}//double.conf`, 'a\n')).exitCode).toBe(0);
    expect(await readFile(join(out, 'double.conf'), 'utf8')).toBe('a\n');
    await mkdir(join(out, 'real'), { recursive: true });
    await symlink(join(out, 'real', 'target.conf'), join(out, 'link.conf'));
    await writeFile(join(out, 'real', 'target.conf'), 'old\n');
    expect((await write(join(out, 'link.conf'), 'through\n')).exitCode).toBe(0);
    expect(await readFile(join(out, 'real', 'target.conf'), 'utf8')).toBe('through\n');
    expect((await lstat(join(out, 'link.conf'))).isSymbolicLink()).toBe(true);
    const slash = await write(`${out}/real/missing/`, 'x\n');
    expect(slash.exitCode).toBe(1);
    expect(slash.stderr).toBe('not a file path (it ends with /)');
    expect((await readdir(join(out, 'real'))).sort()).toEqual(['target.conf']);
  });
});
