import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import templateDefault, { templateAction, type TemplateInput } from '../../src/actions/template.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import { tempDir, testContext, type TestContextOptions } from './support/action-context.js';

let dir: { path: string; cleanup(): Promise<void> };
let templates: string;
let out: string;

beforeAll(async () => {
  dir = await tempDir('template');
  templates = join(dir.path, 'templates');
  out = join(dir.path, 'out');
  await mkdir(templates);
  await mkdir(out);
  await chown(out, 101, 104);
  await writeFile(
    join(templates, 'pgplay.conf.hbs'),
    "# managed by pgplay\nport = {{port}}\nlisten_addresses = '{{host.address}}'\nwal_level = replica\narchive_mode = on\nmax_wal_senders = 10\n",
  );
});
afterAll(() => dir.cleanup());

const ctx = (options: TestContextOptions = {}) => testContext({ become: 'postgres', diff: true, templatesDir: templates, ...options });

async function run(input: TemplateInput, options: TestContextOptions = {}) {
  const c = ctx(options);
  const planned = await templateAction.check(c, input);
  if (!planned.changed) return { planned, outcome: planned };
  return { planned, outcome: await templateAction.apply(c, input, planned) };
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('template action', () => {
  it('is the default export too', () => {
    expect(templateDefault).toBe(templateAction);
  });

  it('first run creates the file with mode and owner and an exact diff; the second run is ok', async () => {
    const dest = join(out, 'first.conf');
    const input: TemplateInput = { src: 'pgplay.conf.hbs', dest, mode: '0600', vars: { port: 5433 } };
    const expected = "# managed by pgplay\nport = 5433\nlisten_addresses = '127.0.0.1'\nwal_level = replica\narchive_mode = on\nmax_wal_senders = 10\n";
    const first = await run(input);
    expect(first.planned.msg).toBe(`would create ${dest}`);
    expect(first.planned.diff).toBe(
      [
        'new file',
        'mode: 0600',
        `--- ${dest} (current)`,
        `+++ ${dest} (rendered)`,
        '@@ -0,0 +1,6 @@',
        '+# managed by pgplay',
        '+port = 5433',
        "+listen_addresses = '127.0.0.1'",
        '+wal_level = replica',
        '+archive_mode = on',
        '+max_wal_senders = 10',
        '',
      ].join('\n'),
    );
    expect(first.outcome).toMatchObject({ changed: true, msg: `created ${dest}`, data: { dest, checksum: sha256(expected) } });
    expect(await readFile(dest, 'utf8')).toBe(expected);
    const st = await stat(dest);
    // A new file written as the become user belongs to it.
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, 101, 104]);
    expect(await readdir(out)).toEqual(['first.conf']);

    const second = await run(input);
    expect(second.outcome).toEqual({ changed: false, msg: `${dest} is up to date`, data: { dest, checksum: sha256(expected) } });
  });

  it('a content change shows a unified diff, and the replaced file is kept with its mode', async () => {
    const dest = join(out, 'change.conf');
    await run({ src: 'pgplay.conf.hbs', dest, mode: '0640', vars: { port: 5432 } });
    const { planned, outcome } = await run({ src: 'pgplay.conf.hbs', dest, mode: '0640', vars: { port: 6543 } });
    expect(planned.msg).toBe(`would update ${dest}: content`);
    expect(planned.diff).toBe(
      [
        `--- ${dest} (current)`,
        `+++ ${dest} (rendered)`,
        '@@ -1,5 +1,5 @@',
        ' # managed by pgplay',
        '-port = 5432',
        '+port = 6543',
        " listen_addresses = '127.0.0.1'",
        ' wal_level = replica',
        ' archive_mode = on',
        '',
      ].join('\n'),
    );
    expect(outcome).toMatchObject({ changed: true, msg: `updated ${dest}: content`, data: { previous: `${dest}.pgplay-prev` } });
    expect(await readFile(dest, 'utf8')).toContain('port = 6543\n');
    expect(await readFile(`${dest}.pgplay-prev`, 'utf8')).toContain('port = 5432\n');
    const prev = await stat(`${dest}.pgplay-prev`);
    expect([prev.mode & 0o7777, prev.uid]).toEqual([0o640, 101]);
  });

  it('same content with another mode: changed, and only a chmod happens (same inode, no previous copy)', async () => {
    const dest = join(out, 'mode.conf');
    await run({ src: 'pgplay.conf.hbs', dest, mode: '0644', vars: { port: 5432 } });
    const before = await stat(dest);
    const { planned, outcome } = await run({ src: 'pgplay.conf.hbs', dest, mode: '0600', vars: { port: 5432 } });
    expect(planned).toMatchObject({ changed: true, msg: `would update ${dest}: mode`, diff: 'mode: 0644 -> 0600\n' });
    expect(outcome.msg).toBe(`updated ${dest}: mode`);
    const after = await stat(dest);
    expect(after.ino).toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o600);
    expect(await readdir(out)).not.toContain('mode.conf.pgplay-prev');
    expect((await run({ src: 'pgplay.conf.hbs', dest, mode: '0600', vars: { port: 5432 } })).outcome.changed).toBe(false);
  });

  it('owner and group are compared and fixed', async () => {
    const dest = join(out, 'owner.conf');
    await run({ src: 'pgplay.conf.hbs', dest, vars: { port: 1 } }, { become: undefined });
    expect((await stat(dest)).uid).toBe(0);
    const { planned } = await run({ src: 'pgplay.conf.hbs', dest, owner: 'postgres', group: 'postgres', vars: { port: 1 } }, { become: undefined });
    expect(planned.diff).toBe('owner: root -> postgres\ngroup: root -> postgres\n');
    const st = await stat(dest);
    expect([st.uid, st.gid]).toEqual([101, 104]);
  });

  it('check mode leaves the file byte-identical, with the same mode and mtime, and creates nothing', async () => {
    const dest = join(out, 'check.conf');
    await writeFile(dest, 'hand edited\n');
    await chmod(dest, 0o644);
    const before = await stat(dest);
    const c = ctx({ checkMode: true });
    const planned = await templateAction.check(c, { src: 'pgplay.conf.hbs', dest, mode: '0600', vars: { port: 5 } });
    expect(planned.changed).toBe(true);
    expect(planned.diff!.startsWith(`mode: 0644 -> 0600\n--- ${dest} (current)\n+++ ${dest} (rendered)\n@@ -1 +1,6 @@\n-hand edited\n+# managed by pgplay\n`)).toBe(true);
    const after = await stat(dest);
    expect(await readFile(dest, 'utf8')).toBe('hand edited\n');
    expect([after.mode, after.mtimeMs, after.ino]).toEqual([before.mode, before.mtimeMs, before.ino]);
    expect((await readdir(out)).filter((n) => n.startsWith('check') || n.startsWith('.check'))).toEqual(['check.conf']);
  });

  it('no diff without --diff; backup: false keeps no previous file', async () => {
    const dest = join(out, 'nobackup.conf');
    await writeFile(dest, 'old\n');
    const { planned } = await run({ src: 'pgplay.conf.hbs', dest, vars: { port: 2 }, backup: false }, { diff: false });
    expect(planned.diff).toBeUndefined();
    expect(await readdir(out)).not.toContain('nobackup.conf.pgplay-prev');
  });

  it('a symlinked dest is judged and written through its target', async () => {
    const real = join(out, 'real.conf');
    const link = join(out, 'link.conf');
    await run({ src: 'pgplay.conf.hbs', dest: real, mode: '0600', vars: { port: 3 } });
    await symlink('real.conf', link);
    expect((await run({ src: 'pgplay.conf.hbs', dest: link, mode: '0600', vars: { port: 3 } })).outcome.changed).toBe(false);
    await run({ src: 'pgplay.conf.hbs', dest: link, mode: '0600', vars: { port: 4 } });
    expect(await readFile(real, 'utf8')).toContain('port = 4\n');
  });

  it('a missing destination directory fails with the path and reason', async () => {
    const dest = join(out, 'no-such-dir', 'x.conf');
    const err = await run({ src: 'pgplay.conf.hbs', dest, vars: { port: 1 } }).catch((e) => e);
    expect(err.code).toBe('STEP_FAILED');
    expect(err.message).toBe(`cannot write ${dest}: the directory does not exist (ENOENT)`);
  });

  it('schema: quoted octal mode, absolute dest, backup defaults to true', () => {
    expect(validateRenderedInput(templateAction, { src: 'a.hbs', dest: '/x', mode: '0600' })).toEqual({ src: 'a.hbs', dest: '/x', mode: '0600', backup: true });
    expect(() => validateRenderedInput(templateAction, { src: 'a.hbs', dest: '/x', mode: '0800' })).toThrow('mode: must match pattern "^[0-7]{3,4}$"');
    expect(() => validateRenderedInput(templateAction, { src: 'a.hbs', dest: 'relative.conf' })).toThrow('dest: must match pattern "^/"');
    expect(() => validateRenderedInput(templateAction, { src: 'a.hbs', dest: '/x', owner: 'a', extra: 1 })).toThrow('unknown key "extra"');
  });
});
