import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir } from './support/action-context.js';

const transport = new LocalTransport(localHost({ name: 'db-local' }));
let dir: { path: string; cleanup(): Promise<void> };

beforeAll(async () => {
  dir = await tempDir('transport');
});
afterAll(async () => {
  await transport.close();
  await dir.cleanup();
});

/** A zombie counts as gone: this machine's init reaps orphans lazily. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(predicate: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LocalTransport.exec', () => {
  it('reports exit codes, stdout and stderr without throwing on failure', async () => {
    const r = await transport.exec(['sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r).toMatchObject({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 7'], exitCode: 7, stdout: 'out', stderr: 'err', timedOut: false });
    expect((await transport.exec(['false'])).exitCode).toBe(1);
    expect((await transport.exec(['true'])).exitCode).toBe(0);
  });

  it('passes argv verbatim: no shell interprets metacharacters', async () => {
    const r = await transport.exec(['printf', '%s|', '$(id)', 'a b', "it's", '*']);
    expect(r.stdout).toBe("$(id)|a b|it's|*|");
  });

  it('feeds stdin, and gives an empty stdin when none is given', async () => {
    expect((await transport.exec(['cat'], { stdin: 'hello\nworld' })).stdout).toBe('hello\nworld');
    expect((await transport.exec(['wc', '-c'], { stdin: Buffer.from([0, 1, 2]) })).stdout).toBe('3');
    const r = await transport.exec(['cat'], { timeoutMs: 5000 });
    expect(r).toMatchObject({ exitCode: 0, stdout: '', timedOut: false });
  });

  it('merges env over the process environment and runs in cwd', async () => {
    const r = await transport.exec(['sh', '-c', 'echo "$PGPLAY_T1"; test -n "$PATH" && echo has-path; pwd'], {
      env: { PGPLAY_T1: 'value one' },
      cwd: dir.path,
    });
    expect(r.stdout.split('\n')).toEqual(['value one', 'has-path', dir.path]);
  });

  it('throws TRANSPORT naming the host when the command cannot be started', async () => {
    const err = await transport.exec(['pgplay-no-such-command', 'x']).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.code).toBe('TRANSPORT');
    expect(err.host).toBe('db-local');
    expect(err.message).toBe('cannot run pgplay-no-such-command: command not found');
    const cwdErr = await transport.exec(['true'], { cwd: join(dir.path, 'missing') }).catch((e) => e);
    expect(cwdErr.code).toBe('TRANSPORT');
    expect(cwdErr.message).toBe(`cannot run true: working directory ${join(dir.path, 'missing')} does not exist`);
    expect(err.hint).toBe('check that pgplay-no-such-command is installed and on PATH on db-local');
  });

  it('kills the whole process tree on timeout and reports timedOut with a non-zero exit', async () => {
    const pidFile = join(dir.path, 'timeout.pid');
    const started = Date.now();
    const r = await transport.exec(['sh', '-c', `sleep 60 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(143); // 128 + SIGTERM
    expect(Date.now() - started).toBeLessThan(5000);
    const grandchild = Number(await readFile(pidFile, 'utf8'));
    await waitFor(() => !alive(grandchild));
  });

  it('stops the command when the abort signal fires', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const r = await transport.exec(['sleep', '60'], { signal: controller.signal });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(143);
    expect(r.durationMs).toBeLessThan(5000);
  });

  it('runs as another user with become (runuser as root), keeping env', async () => {
    expect((await transport.exec(['id', '-un'], { become: 'postgres' })).stdout).toBe('postgres');
    expect((await transport.exec(['id', '-un'], { become: 'root' })).stdout).toBe('root');
    const r = await transport.exec(['sh', '-c', 'echo "$PGPLAY_T2"'], { become: 'postgres', env: { PGPLAY_T2: 'kept' } });
    expect(r.stdout).toBe('kept');
  });

  it('as another user, starts in / unless told where: postgres may not enter the directory pgplay runs in', async () => {
    const r = await transport.exec(['sh', '-c', 'pwd; ls . >/dev/null'], { become: 'postgres' });
    expect(r).toMatchObject({ exitCode: 0, stdout: '/', stderr: '' });
    expect((await transport.exec(['pwd'], { become: 'postgres', cwd: '/tmp' })).stdout).toBe('/tmp');
    expect((await transport.exec(['pwd'])).stdout).toBe(process.cwd());
  });

  it('kills a become command and its children on timeout', async () => {
    const pidFile = join(dir.path, 'become-timeout.pid');
    await chmod(dir.path, 0o777);
    try {
      const r = await transport.exec(['sh', '-c', `sleep 60 & echo $! > ${pidFile}; wait`], { become: 'postgres', timeoutMs: 300 });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).not.toBe(0);
      const grandchild = Number(await readFile(pidFile, 'utf8'));
      await waitFor(() => !alive(grandchild));
    } finally {
      await chmod(dir.path, 0o755);
    }
  });
});

describe('LocalTransport files', () => {
  it('readFile returns null for a missing file and the bytes otherwise', async () => {
    expect(await transport.readFile(join(dir.path, 'nope'))).toBeNull();
    expect(await transport.readFile(join(dir.path, 'nope', 'deeper'))).toBeNull();
    await writeFile(join(dir.path, 'r.txt'), 'abc\n');
    expect((await transport.readFile(join(dir.path, 'r.txt')))!.toString()).toBe('abc\n');
  });

  it('stat reports type, mode bits, owner and group names, size and link target', async () => {
    const f = join(dir.path, 'st.txt');
    await writeFile(f, '12345');
    await chmod(f, 0o640);
    await chown(f, 101, 104);
    expect(await transport.stat(f)).toEqual({ exists: true, type: 'file', mode: 0o640, owner: 'postgres', group: 'postgres', size: 5 });
    const d = join(dir.path, 'st-dir');
    await mkdir(d, { mode: 0o700 });
    await chmod(d, 0o2750);
    expect(await transport.stat(d)).toMatchObject({ exists: true, type: 'directory', mode: 0o2750, owner: 'root', group: 'root' });
    const l = join(dir.path, 'st-link');
    await symlink('st.txt', l);
    expect(await transport.stat(l)).toMatchObject({ exists: true, type: 'symlink', linkTarget: 'st.txt' });
    expect(await transport.stat(join(dir.path, 'none'))).toEqual({ exists: false });
  });

  it('writeFile creates a file with the mode and owner asked for, and leaves no temp file', async () => {
    const sub = join(dir.path, 'w1');
    await mkdir(sub);
    const f = join(sub, 'secret.conf');
    expect(await transport.writeFile(f, 'password=s3cret\n', { mode: 0o600, owner: 'postgres', group: 'postgres' })).toEqual({});
    const st = await stat(f);
    expect(st.mode & 0o7777).toBe(0o600);
    expect([st.uid, st.gid]).toEqual([101, 104]);
    expect(await readFile(f, 'utf8')).toBe('password=s3cret\n');
    expect(await readdir(sub)).toEqual(['secret.conf']);
  });

  it('a new file written as a become user belongs to that user; a replaced file keeps its owner and mode', async () => {
    const sub = join(dir.path, 'w2');
    await mkdir(sub);
    const f = join(sub, 'a.conf');
    await transport.writeFile(f, 'one\n', { become: 'postgres', mode: 0o640 });
    let st = await stat(f);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([101, 104, 0o640]);
    await transport.writeFile(f, 'two\n');
    st = await stat(f);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([101, 104, 0o640]);
    expect(await readFile(f, 'utf8')).toBe('two\n');
  });

  it('keepPrevious keeps the replaced file beside it with its content, mode and owner', async () => {
    const sub = join(dir.path, 'w3');
    await mkdir(sub);
    const f = join(sub, 'pg_hba.conf');
    await writeFile(f, 'old\n');
    await chmod(f, 0o640);
    await chown(f, 101, 104);
    const r = await transport.writeFile(f, 'new\n', { mode: 0o600, keepPrevious: true });
    expect(r).toEqual({ previousPath: `${f}.pgplay-prev` });
    expect(await readFile(f, 'utf8')).toBe('new\n');
    const prev = await stat(`${f}.pgplay-prev`);
    expect(await readFile(`${f}.pgplay-prev`, 'utf8')).toBe('old\n');
    expect([prev.mode & 0o7777, prev.uid, prev.gid]).toEqual([0o640, 101, 104]);
    expect((await stat(f)).mode & 0o7777).toBe(0o600);
    // A second write replaces the previous copy with the file it replaces.
    await transport.writeFile(f, 'newer\n', { keepPrevious: true });
    expect(await readFile(`${f}.pgplay-prev`, 'utf8')).toBe('new\n');
    expect((await readdir(sub)).sort()).toEqual(['pg_hba.conf', 'pg_hba.conf.pgplay-prev']);
  });

  it('writes through a symlink to the file it points at', async () => {
    const sub = join(dir.path, 'w4');
    await mkdir(sub);
    await writeFile(join(sub, 'real.conf'), 'x\n');
    await symlink('real.conf', join(sub, 'link.conf'));
    await transport.writeFile(join(sub, 'link.conf'), 'y\n');
    expect((await lstat(join(sub, 'link.conf'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(sub, 'real.conf'), 'utf8')).toBe('y\n');
  });
});

describe('LocalTransport.writeFile failures leave the target byte-identical and no temp file', () => {
  async function prepared(name: string): Promise<{ sub: string; f: string; before: Buffer }> {
    const sub = join(dir.path, name);
    await mkdir(sub);
    const f = join(sub, 'postgresql.conf');
    await writeFile(f, 'port = 5432\nshared_buffers = 128MB\n');
    await chmod(f, 0o644);
    return { sub, f, before: await readFile(f) };
  }

  it('unknown owner', async () => {
    const { sub, f, before } = await prepared('fail-owner');
    const err = await transport.writeFile(f, 'port = 6543\n', { owner: 'pgplay-no-such-user', keepPrevious: true }).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.message).toBe('user pgplay-no-such-user does not exist');
    expect(err.host).toBe('db-local');
    expect(await readFile(f)).toEqual(before);
    expect(await readdir(sub)).toEqual(['postgresql.conf']);
  });

  it('immutable target: the rename fails after the data was written', async () => {
    const { sub, f, before } = await prepared('fail-immutable');
    execFileSync('chattr', ['+i', f]);
    try {
      const err = await transport.writeFile(f, 'port = 6543\n', { mode: 0o600 }).catch((e) => e);
      expect(err).toBeInstanceOf(PgplayError);
      expect(err.code).toBe('STEP_FAILED');
      expect(err.message).toBe(`cannot write ${f}: operation not permitted (EPERM)`);
    } finally {
      execFileSync('chattr', ['-i', f]);
    }
    expect(await readFile(f)).toEqual(before);
    expect((await stat(f)).mode & 0o7777).toBe(0o644);
    expect(await readdir(sub)).toEqual(['postgresql.conf']);
  });

  it('target is a directory', async () => {
    const sub = join(dir.path, 'fail-dir');
    await mkdir(join(sub, 'conf.d'), { recursive: true });
    const err = await transport.writeFile(join(sub, 'conf.d'), 'x').catch((e) => e);
    expect(err.message).toBe(`cannot write ${join(sub, 'conf.d')}: it exists and is not a regular file`);
    expect(await readdir(sub)).toEqual(['conf.d']);
  });

  describe('on a tmpfs', () => {
    let mnt: string;
    beforeAll(async () => {
      mnt = join(dir.path, 'mnt');
      await mkdir(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0755', 'pgplay-test', mnt]);
    });
    afterAll(() => {
      execFileSync('umount', [mnt]);
    });

    it('read-only file system', async () => {
      const f = join(mnt, 'ro.conf');
      await writeFile(f, 'original\n');
      execFileSync('mount', ['-o', 'remount,ro', mnt]);
      try {
        const err = await transport.writeFile(f, 'replacement\n', { keepPrevious: true }).catch((e) => e);
        expect(err).toBeInstanceOf(PgplayError);
        expect(err.message).toBe(`cannot write ${f}: read-only file system (EROFS)`);
        expect(await readFile(f, 'utf8')).toBe('original\n');
        expect(await readdir(mnt)).toEqual(['ro.conf']);
      } finally {
        execFileSync('mount', ['-o', 'remount,rw', mnt]);
      }
    });

    it('disk full in the middle of the data', async () => {
      const f = join(mnt, 'full.conf');
      await writeFile(f, 'original\n');
      const err = await transport.writeFile(f, Buffer.alloc(1024 * 1024, 'x'), { keepPrevious: true }).catch((e) => e);
      expect(err.message).toBe(`cannot write ${f}: no space left on device (ENOSPC)`);
      expect(await readFile(f, 'utf8')).toBe('original\n');
      expect((await readdir(mnt)).sort()).toEqual(['full.conf', 'ro.conf']);
    });
  });
});

describe('LocalTransport file access through commands (the sudo path, exercised via runuser)', () => {
  const viaCommands = new LocalTransport(localHost({ name: 'db-cmd' }), { fileAccess: 'commands' });
  let sub: string;
  beforeAll(async () => {
    sub = join(dir.path, 'cmd');
    await mkdir(sub);
    await chown(sub, 101, 104);
  });
  afterAll(() => viaCommands.close());

  it('reads and stats like the direct path', async () => {
    const f = join(sub, 'data.bin');
    const bytes = Buffer.from([0, 10, 255, 10, 10]);
    await writeFile(f, bytes);
    await chmod(f, 0o640);
    await chown(f, 101, 104);
    await symlink('data.bin', join(sub, 'link'));
    expect(await viaCommands.readFile(f, { become: 'postgres' })).toEqual(bytes);
    expect(await viaCommands.readFile(join(sub, 'none'), { become: 'postgres' })).toBeNull();
    for (const p of [f, sub, join(sub, 'link'), join(sub, 'none')]) {
      expect(await viaCommands.stat(p, { become: 'postgres' })).toEqual(await transport.stat(p));
    }
  });

  it('as a become user, writes through a symlink to the file it points at, owned as it was', async () => {
    const sub = join(dir.path, 'w5');
    await mkdir(sub);
    await chown(sub, 101, 104);
    await writeFile(join(sub, 'real.conf'), 'x\n');
    await chown(join(sub, 'real.conf'), 101, 104);
    await symlink('real.conf', join(sub, 'link.conf'));
    await viaCommands.writeFile(join(sub, 'link.conf'), 'y\n', { become: 'postgres' });
    expect((await lstat(join(sub, 'link.conf'))).isSymbolicLink()).toBe(true);
    expect(await readFile(join(sub, 'real.conf'), 'utf8')).toBe('y\n');
    expect((await stat(join(sub, 'real.conf'))).uid).toBe(101);
    expect((await readdir(sub)).sort()).toEqual(['link.conf', 'real.conf']);
  });

  it('writes atomically as the become user with mode and previous copy', async () => {
    const f = join(sub, 'standby.conf');
    expect(await viaCommands.writeFile(f, 'a\n', { become: 'postgres', mode: 0o600 })).toEqual({});
    let st = await stat(f);
    expect([st.uid, st.mode & 0o7777]).toEqual([101, 0o600]);
    const r = await viaCommands.writeFile(f, 'b\n', { become: 'postgres', keepPrevious: true });
    expect(r).toEqual({ previousPath: `${f}.pgplay-prev` });
    st = await stat(f);
    expect([st.uid, st.mode & 0o7777]).toEqual([101, 0o600]);
    expect(await readFile(f, 'utf8')).toBe('b\n');
    expect(await readFile(`${f}.pgplay-prev`, 'utf8')).toBe('a\n');
    expect((await readdir(sub)).filter((n) => n.includes('pgplay-tmp'))).toEqual([]);
  });

  it('a failure (no write permission for the become user) leaves the target and no temp file', async () => {
    const locked = join(dir.path, 'cmd-locked');
    await mkdir(locked, { mode: 0o755 });
    await writeFile(join(locked, 'x.conf'), 'keep\n');
    const err = await viaCommands.writeFile(join(locked, 'x.conf'), 'nope\n', { become: 'postgres' }).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.message).toBe(`cannot write ${join(locked, 'x.conf')}: mktemp: failed to create file via template '${locked}/.x.conf.pgplay-tmp-XXXXXX': Permission denied`);
    expect(await readFile(join(locked, 'x.conf'), 'utf8')).toBe('keep\n');
    expect(await readdir(locked)).toEqual(['x.conf']);
  });
});

describe('LocalTransport.openStream', () => {
  it('is a duplex over the child stdin/stdout, running as the become user, and destroying it kills the child', async () => {
    const pidFile = join(dir.path, 'stream.pid');
    await chmod(dir.path, 0o777);
    try {
      const stream = await transport.openStream(['sh', '-c', `id -un; echo $$ > ${pidFile}; exec cat`], { become: 'postgres' });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.write('ping\n');
      await waitFor(() => Buffer.concat(chunks).toString() === 'postgres\nping\n');
      await waitFor(() => existsSync(pidFile) && readFileSyncNumber(pidFile) > 0);
      const pid = readFileSyncNumber(pidFile);
      expect(alive(pid)).toBe(true);
      stream.destroy();
      await waitFor(() => !alive(pid));
    } finally {
      await chmod(dir.path, 0o755);
    }
  });

  it('close() stops streams still open', async () => {
    const own = new LocalTransport(localHost({ name: 'db-close' }));
    const pidFile = join(dir.path, 'stream2.pid');
    const stream = await own.openStream(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 60`]);
    await waitFor(() => existsSync(pidFile) && readFileSyncNumber(pidFile) > 0);
    const pid = readFileSyncNumber(pidFile);
    await own.close();
    expect(alive(pid)).toBe(false);
    stream.destroy();
  });

  it('writing on after the command has read all it wanted and exited is no error, and its output is all there', async () => {
    // A receiving tar stops at the end of its archive while the sender still writes padding.
    const stream = await transport.openStream(['sh', '-c', 'head -c 5 >/dev/null; echo done']);
    const errors: Error[] = [];
    stream.on('error', (e: Error) => errors.push(e));
    let out = '';
    stream.on('data', (c: Buffer) => (out += c.toString()));
    // 'close' too: a stream destroyed by a write error never ends, it only closes.
    const ended = new Promise<void>((resolve) => {
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
    });
    const block = Buffer.alloc(64 * 1024, 'x');
    for (let i = 0; i < 32; i++) {
      stream.write(block);
      await new Promise((r) => setTimeout(r, 2));
    }
    stream.end();
    await ended;
    await new Promise((r) => setTimeout(r, 50));
    expect(out).toBe('done\n');
    expect(errors).toEqual([]);
  });

  it('throws TRANSPORT when the command cannot start', async () => {
    const err = await transport.openStream(['pgplay-no-such-command']).catch((e) => e);
    expect(err.code).toBe('TRANSPORT');
    expect(err.message).toBe('cannot run pgplay-no-such-command: command not found');
  });
});

function readFileSyncNumber(path: string): number {
  return Number(readFileSync(path, 'utf8').trim());
}
