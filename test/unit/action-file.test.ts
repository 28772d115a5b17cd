import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, readlink, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fileDefault, { fileAction, type FileInput } from '../../src/actions/file.js';
import { PgplayError } from '../../src/core/errors.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import { localHost, tempDir, testContext, type TestContextOptions } from './support/action-context.js';

let dir: { path: string; cleanup(): Promise<void> };
let base: string;

beforeAll(async () => {
  dir = await tempDir('file');
  base = join(dir.path, 'work');
  await mkdir(base);
  await chown(base, 101, 104);
});
afterAll(() => dir.cleanup());

const ctx = (options: TestContextOptions = {}) => testContext({ become: 'postgres', ...options });

async function run(input: FileInput, options: TestContextOptions = {}) {
  const c = ctx(options);
  const planned = await fileAction.check(c, input);
  if (!planned.changed) return { planned, outcome: planned };
  return { planned, outcome: await fileAction.apply(c, input, planned) };
}

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o7777;
}

describe('file action', () => {
  it('is the default export too', () => {
    expect(fileDefault).toBe(fileAction);
  });

  describe('state: directory', () => {
    it('creates with parents as the become user, sets mode; a second pass is ok', async () => {
      const path = join(base, 'a', 'b', 'drill');
      const input: FileInput = { path, state: 'directory', mode: '0700' };
      const first = await run(input, { diff: true });
      expect(first.planned).toEqual({
        changed: true,
        msg: `would change ${path}: state: absent -> directory; mode: 0700`,
        data: { path, state: 'directory' },
        diff: `${path}: state: absent -> directory\n${path}: mode: 0700\n`,
      });
      expect(first.outcome.msg).toBe(`changed ${path}: state: absent -> directory; mode: 0700`);
      const st = await stat(path);
      expect([st.isDirectory(), st.mode & 0o7777, st.uid, st.gid]).toEqual([true, 0o700, 101, 104]);
      expect((await stat(join(base, 'a'))).uid).toBe(101);
      const second = await run(input);
      expect(second.outcome).toEqual({ changed: false, msg: `${path} is a directory as wanted`, data: { path, state: 'directory' } });
    });

    it('fixes mode and owner of an existing directory', async () => {
      const path = join(dir.path, 'owned-by-root');
      await mkdir(path, { mode: 0o755 });
      await chmod(path, 0o755);
      const { planned } = await run({ path, state: 'directory', mode: '0750', owner: 'postgres', group: 'postgres' }, { become: undefined });
      expect(planned.msg).toBe(`would change ${path}: mode: 0755 -> 0750; owner: root -> postgres; group: root -> postgres`);
      const st = await stat(path);
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 101, 104]);
      expect((await run({ path, state: 'directory', mode: '0750', owner: 'postgres' })).outcome.changed).toBe(false);
    });

    it('check mode changes nothing', async () => {
      const path = join(base, 'check-only');
      const planned = await fileAction.check(ctx({ checkMode: true }), { path, state: 'directory', mode: '0700' });
      expect(planned.changed).toBe(true);
      expect(existsSync(path)).toBe(false);
    });

    it('fails when a file is in the way, and when the become user may not create it', async () => {
      const path = join(base, 'a-file');
      await writeFile(path, 'x');
      const err = await run({ path, state: 'directory' }).catch((e) => e);
      expect(err).toBeInstanceOf(PgplayError);
      expect(err.message).toBe(`${path} exists and is a regular file, not a directory`);
      const rootOwned = join(dir.path, 'root-owned');
      await mkdir(rootOwned, { mode: 0o755 });
      const denied = await run({ path: join(rootOwned, 'sub'), state: 'directory' }).catch((e) => e);
      expect(denied.code).toBe('STEP_FAILED');
      expect(denied.message).toBe(
        `mkdir -p ${join(rootOwned, 'sub')} failed (rc 1): mkdir: cannot create directory '${join(rootOwned, 'sub')}': Permission denied`,
      );
    });
  });

  describe('state: file', () => {
    it('fixes the attributes of an existing file; a second pass is ok', async () => {
      const path = join(base, 'recovery.signal');
      await writeFile(path, '');
      await chmod(path, 0o644);
      await chown(path, 101, 104);
      const first = await run({ path, state: 'file', mode: '0600' });
      expect(first.outcome.msg).toBe(`changed ${path}: mode: 0644 -> 0600`);
      expect(await modeOf(path)).toBe(0o600);
      expect((await run({ path, mode: '0600' })).outcome).toMatchObject({ changed: false, msg: `${path} is a file as wanted` });
    });

    it('a missing file fails at run time and is noted under --check', async () => {
      const path = join(base, 'missing.conf');
      const err = await run({ path, state: 'file' }).catch((e) => e);
      expect(err.message).toBe(`${path} does not exist`);
      expect(err.hint).toBe('use state: touch to create an empty file');
      const planned = await fileAction.check(ctx({ checkMode: true }), { path, state: 'file' });
      expect(planned).toMatchObject({ changed: true, msg: `${path} does not exist yet; state file expects an earlier step to create it` });
    });
  });

  describe('state: touch', () => {
    it('creates an empty file with mode; every pass updates the timestamps and counts as a change', async () => {
      const path = join(base, 'standby.signal');
      const first = await run({ path, state: 'touch', mode: '0600' });
      expect(first.outcome.msg).toBe(`changed ${path}: state: absent -> file; mode: 0600`);
      const st = await stat(path);
      expect([st.size, st.mode & 0o7777, st.uid]).toEqual([0, 0o600, 101]);
      await utimes(path, new Date('2020-01-01'), new Date('2020-01-01'));
      const second = await run({ path, state: 'touch', mode: '0600' });
      expect(second.outcome).toMatchObject({ changed: true, msg: `changed ${path}: timestamps updated` });
      expect((await stat(path)).mtime.getFullYear()).toBeGreaterThan(2020);
    });
  });

  describe('state: link', () => {
    it('creates, keeps and retargets a symbolic link', async () => {
      const path = join(base, 'current');
      const first = await run({ path, state: 'link', src: 'a/b' });
      expect(first.outcome.msg).toBe(`changed ${path}: state: absent -> link to a/b`);
      expect(await readlink(path)).toBe('a/b');
      expect((await lstat(path)).uid).toBe(101);
      expect((await run({ path, state: 'link', src: 'a/b' })).outcome).toMatchObject({ changed: false, msg: `${path} is a link to a/b` });
      const retarget = await run({ path, state: 'link', src: 'a' });
      expect(retarget.outcome.msg).toBe(`changed ${path}: link: a/b -> a`);
      expect(await readlink(path)).toBe('a');
    });

    it('replaces a regular file only with force and never a directory', async () => {
      const file = join(base, 'link-over-file');
      await writeFile(file, 'data');
      await chown(file, 101, 104);
      const err = await run({ path: file, state: 'link', src: '/etc/hostname' }).catch((e) => e);
      expect(err.message).toBe(`${file} exists and is a regular file`);
      expect(err.hint).toBe('set force: true to replace it with the link');
      await run({ path: file, state: 'link', src: '/etc/hostname', force: true });
      expect(await readlink(file)).toBe('/etc/hostname');
      const directory = join(base, 'a');
      const dirErr = await run({ path: directory, state: 'link', src: '/tmp', force: true }).catch((e) => e);
      expect(dirErr.message).toBe(`${directory} exists and is a directory; refusing to replace it with a link`);
    });
  });

  describe('state: absent', () => {
    it('removes a file and a link; a second pass is ok', async () => {
      const path = join(base, 'gone.txt');
      await writeFile(path, 'x');
      expect((await run({ path, state: 'absent' })).outcome.msg).toBe(`changed ${path}: state: file -> absent`);
      expect(existsSync(path)).toBe(false);
      expect((await run({ path, state: 'absent' })).outcome).toMatchObject({ changed: false, msg: `${path} is absent` });
      const link = join(base, 'gone-link');
      await symlink(join(base, 'a'), link);
      await run({ path: link, state: 'absent' });
      expect(existsSync(join(base, 'a'))).toBe(true);
      expect(existsSync(link)).toBe(false);
    });

    it('removes an empty directory; a non-empty one only with force (which makes the step destructive)', async () => {
      const empty = join(base, 'empty-dir');
      await mkdir(empty);
      await chown(empty, 101, 104);
      await run({ path: empty, state: 'absent' });
      expect(existsSync(empty)).toBe(false);

      const full = join(base, 'full-dir');
      await mkdir(join(full, 'base', '1'), { recursive: true });
      await writeFile(join(full, 'base', '1', 'rel'), 'x');
      await chown(full, 101, 104);
      const err = await run({ path: full, state: 'absent' }).catch((e) => e);
      expect(err.code).toBe('GUARD');
      expect(err.exitCode).toBe(3);
      expect(err.message).toBe(`refusing to remove ${full}: the directory is not empty`);
      expect(err.hint).toBe('set force: true to remove it with everything in it');
      expect(fileAction.destructive!({ path: full, state: 'absent' })).toBe(false);
      expect(fileAction.destructive!({ path: full, state: 'absent', force: true })).toBe(true);
      // As root (no become), since the contents belong to root.
      const { outcome } = await run({ path: full, state: 'absent', force: true }, { become: undefined });
      expect(outcome.msg).toBe(`changed ${full}: state: directory -> absent (with its contents)`);
      expect(existsSync(full)).toBe(false);
    });
  });

  describe('guards', () => {
    it.each(['/', '/var', '/var/', '/var/lib/..', '//tmp//'])('refuses to remove %s, also under --check', async (path) => {
      const err = await fileAction.check(ctx({ checkMode: true }), { path, state: 'absent' }).catch((e) => e);
      expect(err).toBeInstanceOf(PgplayError);
      expect(err.code).toBe('GUARD');
      expect(err.message).toMatch(/^refusing to remove \/[a-z]*: a path needs at least two components to be removed$/);
    });

    it('refuses to remove the PGDATA of a running cluster, a directory holding it, or a link to it', async () => {
      const pgdata = join(base, 'pg', '15', 'main');
      await mkdir(pgdata, { recursive: true });
      await writeFile(join(pgdata, 'PG_VERSION'), '15\n');
      await symlink(pgdata, join(base, 'pgdata-link'));
      const host = localHost({ name: 'db9', pgdata: pgdata + '/' });
      // Running is read live from postmaster.pid (a live pid: this process), not from the facts.
      await writeFile(join(pgdata, 'postmaster.pid'), `${process.pid}\n${pgdata}\n`);
      const running = { host, facts: { running: false, pgdata_present: true } };
      for (const [path, how] of [
        [pgdata, 'it is'],
        [join(base, 'pg'), 'it contains'],
        [join(base, 'pgdata-link'), 'it is'],
      ] as const) {
        const err = await run({ path, state: 'absent', force: true }, running).catch((e) => e);
        expect(err.code).toBe('GUARD');
        expect(err.message).toBe(`refusing to remove ${path}: ${how} the PGDATA (${pgdata}/) of the running cluster on db9`);
        expect(err.hint).toBe('stop PostgreSQL first (postgres: { state: stopped })');
      }
      expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(true);
      // Stopped (a stale postmaster.pid, facts that still say running): the primary's PGDATA is still never
      // removed; another host's goes ahead.
      await writeFile(join(pgdata, 'postmaster.pid'), '2147483646\n');
      const primary = await run({ path: join(base, 'pg'), state: 'absent', force: true }, { host, facts: { running: true }, become: undefined }).catch((e) => e);
      expect(primary.code).toBe('GUARD');
      expect(primary.message).toBe(`refusing to remove ${join(base, 'pg')}: it contains the PGDATA of db9, the inventory's primary`);
      expect(existsSync(join(pgdata, 'PG_VERSION'))).toBe(true);
      await run({ path: join(base, 'pg'), state: 'absent', force: true }, { host: { ...host, role: 'drill' }, facts: { running: true }, become: undefined });
      expect(existsSync(join(base, 'pg'))).toBe(false);
    });
  });

  describe('schema', () => {
    it('defaults state to file and force to false; link needs src; paths are absolute', () => {
      expect(validateRenderedInput(fileAction, { path: '/x' })).toEqual({ path: '/x', state: 'file', force: false });
      expect(() => validateRenderedInput(fileAction, { path: '/x', state: 'link' })).toThrow("must have required property 'src'");
      expect(() => validateRenderedInput(fileAction, { path: 'x', state: 'absent' })).toThrow('path: must match pattern "^/"');
      expect(() => validateRenderedInput(fileAction, { path: '/x', state: 'gone' })).toThrow('state: must be one of directory, file, absent, link, touch');
    });

    it('mode on a link and src without state link are refused with what was expected', async () => {
      const err = await fileAction.check(ctx(), { path: join(base, 'l'), state: 'link', src: 'a', mode: '0700' }).catch((e) => e);
      expect(err.message).toBe('mode does not apply to state link');
      const err2 = await fileAction.check(ctx(), { path: join(base, 'l'), state: 'directory', src: 'a' }).catch((e) => e);
      expect(err2.message).toBe('src applies only to state link, not directory');
      await expect(readdir(base)).resolves.not.toContain('l');
    });
  });
});
