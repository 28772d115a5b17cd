/**
 * The SSH transport against a real OpenSSH server (test/support/sshd.ts): every address of the rig
 * is a host. Commands really run, files really land with their owner and mode, and failures are
 * provoked for real (unknown keys, refused auth, killed connections).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import type { Host } from '../../src/model/inventory.js';
import { SshTransport, type SshTransportOptions } from '../../src/transports/ssh.js';
import { resolveJumpHost } from '../../src/transports/ssh/jump.js';
import { PREVIOUS_SUFFIX } from '../../src/transports/types.js';
import { descendants, sshHost, startSshd, type Sshd } from '../support/sshd.js';

const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
let sshd: Sshd;
let work: string;
let pgUid: number;
let pgGid: number;
const open: SshTransport[] = [];

function transport(host: Host, options: Partial<SshTransportOptions> = {}): SshTransport {
  const t = new SshTransport(host, { resolveSecret: async () => undefined, ...options });
  open.push(t);
  return t;
}

function db2(connection: Partial<Host['connection']> = {}): Host {
  return sshHost(sshd, 'db2', '127.0.0.3', connection);
}

async function rejection(p: Promise<unknown>): Promise<PgplayError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(PgplayError);
  return e as PgplayError;
}

function acceptedLogins(): number {
  return sshd.logs().match(/Accepted publickey for root/g)?.length ?? 0;
}

/**
 * `body` with a transport to a server of its own that allows two sessions at once; afterwards the transport
 * must still be on its one connection, and is closed, then the server is stopped.
 */
async function onTinyServer(address: string, body: (t: SshTransport) => Promise<void>): Promise<void> {
  const small = await startSshd({ addresses: [address], maxSessions: 2 });
  try {
    const t = transport(sshHost(small, 'tiny', address));
    await body(t);
    expect(t.connectionsOpened).toBe(1);
    await t.close();
  } finally {
    await small.stop();
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Whether `args` runs under a connection's sshd process. Tests kill a connection only once its
 * command runs: killing a session while the login shell still reads its rc files can leave their
 * locks behind (root's .bashrc here runs `pyenv init`, whose rehash lock then blocks every shell).
 */
function runningUnder(connPid: number, args: string): boolean {
  return descendants(connPid).some((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === args;
    } catch {
      return false;
    }
  });
}

beforeAll(async () => {
  sshd = await startSshd({ addresses: ADDRESSES });
  work = mkdtempSync(join(tmpdir(), 'pgplay-ssh-e2e-'));
  chmodSync(work, 0o755); // postgres must traverse it to reach its own 0700 directories
  pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  pgGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

afterAll(async () => {
  await sshd?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('exec', () => {
  test('exit code, stdout, stderr, stdin, cwd and env', async () => {
    const t = transport(db2());
    const r = await t.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(r).toMatchObject({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'], exitCode: 3, stdout: 'out', stderr: 'err', timedOut: false });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);

    expect((await t.exec(['cat'], { stdin: 'hello\nworld' })).stdout).toBe('hello\nworld');
    const blob = randomBytes(300_000);
    const sum = await t.exec(['sha256sum'], { stdin: blob });
    expect(sum.stdout).toBe(`${createHash('sha256').update(blob).digest('hex')}  -`);
    // No stdin given: the command sees EOF instead of hanging.
    expect(await t.exec(['cat'])).toMatchObject({ exitCode: 0, stdout: '' });

    expect((await t.exec(['pwd'], { cwd: work })).stdout).toBe(work);
    expect((await t.exec(['sh', '-c', 'printf %s "$FOO"'], { env: { FOO: 'bar baz' } })).stdout).toBe('bar baz');
    // As locally: a program that does not exist cannot run (a rejection), while under become the
    // wrapper's own failure status is the result (runuser says 1 or 127 depending on PATH).
    const missing = await rejection(t.exec(['pgplay-no-such-program', 'x']));
    expect(missing.code).toBe('TRANSPORT');
    expect(missing.message).toBe('cannot run pgplay-no-such-program: command not found');
    expect(missing.hint).toBe('check that pgplay-no-such-program is installed and on PATH on db2');
    const missingAs = await t.exec(['pgplay-no-such-program'], { become: 'postgres' });
    expect(missingAs.exitCode).not.toBe(0);
    expect(missingAs.stderr).toContain('pgplay-no-such-program');
    // Only one final newline goes, as execa strips it locally.
    expect((await t.exec(['printf', 'a\n\n'])).stdout).toBe('a\n');
    expect((await t.exec(['sh', '-c', 'kill -TERM $$'])).exitCode).toBe(143);
  });

  test('hostile values are literal argv: byte-identical echo, nothing extra executes', async () => {
    const marker = join(work, `pwned-${randomBytes(4).toString('hex')}`);
    const hostile = [
      "single ' quote",
      'double " quote',
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `x; touch ${marker}`,
      `x && touch ${marker}`,
      `x | touch ${marker}`,
      'new\nline\n',
      '*',
      '/etc/pass*',
      '-rf',
      '--',
      '$HOME ${PATH}',
      "'\"'\"'",
      '\\',
      '',
      'tab\there',
      'ünïcødé ✓',
    ];
    const t = transport(db2());
    for (const become of [undefined, 'postgres']) {
      const r = await t.exec(['printf', '%s\\0', ...hostile], { become });
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split('\0').slice(0, -1)).toEqual(hostile);
      const env = await t.exec(['sh', '-c', 'printf %s "$V"'], { become, env: { V: hostile.join('|') }, cwd: work });
      expect(env.stdout).toBe(hostile.join('|'));
    }
    // A directory name cannot hold the marker's path (it has slashes): touch a bare name instead,
    // which would land in the login shell's cwd (root's home) or the directory itself.
    const bare = `pgplay-pwned-${randomBytes(4).toString('hex')}`;
    const dir = join(work, `dir $(touch ${bare}) \`touch ${bare}\` ' " ; touch ${bare}`);
    mkdirSync(dir);
    expect((await t.exec(['pwd'], { cwd: dir })).stdout).toBe(dir);
    expect(existsSync(marker)).toBe(false);
    for (const where of [work, dir, '/root', '/']) expect(existsSync(join(where, bare))).toBe(false);
  });

  test('become postgres runs as postgres (runuser as root)', async () => {
    const t = transport(db2());
    expect((await t.exec(['id', '-un'], { become: 'postgres' })).stdout).toBe('postgres');
    expect((await t.exec(['id', '-un'])).stdout).toBe('root');
    const r = await t.exec(['sh', '-c', 'echo "$(id -un):$V:$(pwd)"'], { become: 'postgres', env: { V: 'v1' }, cwd: '/tmp' });
    expect(r.stdout).toBe('postgres:v1:/tmp');
  });

  test('timeout stops the remote command and reports timedOut', async () => {
    const t = transport(db2());
    const pids = join(work, 'pids');
    mkdirSync(pids);
    chmodSync(pids, 0o1777);
    for (const become of [undefined, 'postgres']) {
      const pidFile = join(pids, `sleeper-${become ?? 'root'}`);
      const started = Date.now();
      const r = await t.exec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { timeoutMs: 700, become, cwd: '/' });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBe(143); // TERM reached the command (128 + 15)
      expect(r.stderr).not.toContain('pgplay-pid');
      expect(Date.now() - started).toBeLessThan(6_000);
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      expect(pid).toBeGreaterThan(0);
      await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 5_000);
    }
    // A command that finishes in time is untouched, its stderr exactly its own.
    expect(await t.exec(['sh', '-c', 'echo e >&2; exit 4'], { timeoutMs: 20_000 })).toMatchObject({
      exitCode: 4,
      stderr: 'e',
      timedOut: false,
    });
  });

  test('an AbortSignal that fires while the session is still being opened interrupts the command too', async () => {
    // A fresh transport: the exec has passed its first look at the signal and waits for the SSH handshake
    // when the abort comes (a start's readiness watcher is stopped so when pg_ctl returns first).
    const t = transport(db2());
    const controller = new AbortController();
    const pidFile = join(work, 'aborted-early-sleeper');
    const pending = t.exec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { signal: controller.signal });
    controller.abort();
    // Before the fix the abort went unheard: the sleep ran its 30 s and the command succeeded.
    const err = await rejection(pending);
    expect(err.code).toBe('INTERRUPTED');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 5_000);
    }
  }, 40_000);

  test('an AbortSignal interrupts the command', async () => {
    const t = transport(db2());
    const controller = new AbortController();
    const pidFile = join(work, 'aborted-sleeper');
    const pending = t.exec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { signal: controller.signal });
    await until('the remote sleep', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
    controller.abort();
    const err = await rejection(pending);
    expect(err.code).toBe('INTERRUPTED');
    expect(err.message).toContain('interrupted while running on db2 (127.0.0.3:');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 5_000);
  });
});

describe('files', () => {
  let pgdata: string;
  beforeAll(() => {
    pgdata = join(work, 'pgdata');
    mkdirSync(pgdata, { mode: 0o700 });
    chmodSync(pgdata, 0o700);
    chownSync(pgdata, pgUid, pgGid);
  });

  test('writeFile as root with become postgres into a 0700 postgres dir: 0600 postgres:postgres, atomic, keeps previous', async () => {
    const t = transport(db2());
    const path = join(pgdata, 'postgresql.auto.conf');
    const first = await t.writeFile(path, "a = 'one'\n", { mode: 0o600, owner: 'postgres', group: 'postgres', become: 'postgres', keepPrevious: true });
    expect(first).toEqual({});
    let st = statSync(path);
    expect(st.mode & 0o7777).toBe(0o600);
    expect([st.uid, st.gid]).toEqual([pgUid, pgGid]);
    expect(readFileSync(path, 'utf8')).toBe("a = 'one'\n");

    const inodeBefore = st.ino;
    const second = await t.writeFile(path, "a = 'two'\n", { mode: 0o600, owner: 'postgres', group: 'postgres', become: 'postgres', keepPrevious: true });
    expect(second).toEqual({ previousPath: `${path}${PREVIOUS_SUFFIX}` });
    st = statSync(path);
    expect(readFileSync(path, 'utf8')).toBe("a = 'two'\n");
    expect(st.ino).not.toBe(inodeBefore); // replaced by rename, not rewritten in place
    expect(st.mode & 0o7777).toBe(0o600);
    expect([st.uid, st.gid]).toEqual([pgUid, pgGid]);
    const prev = statSync(`${path}${PREVIOUS_SUFFIX}`);
    expect(readFileSync(`${path}${PREVIOUS_SUFFIX}`, 'utf8')).toBe("a = 'one'\n");
    expect([prev.mode & 0o7777, prev.uid]).toEqual([0o600, pgUid]);
    expect(readdirSync(pgdata).sort()).toEqual(['postgresql.auto.conf', `postgresql.auto.conf${PREVIOUS_SUFFIX}`]);
  });

  test('writeFile keeps an existing mode and owner when none is given; new files follow the umask', async () => {
    const t = transport(db2());
    const path = join(work, 'keep-mode.conf');
    writeFileSync(path, 'old\n');
    chmodSync(path, 0o640);
    chownSync(path, pgUid, pgGid);
    await t.writeFile(path, 'new\n');
    const st = statSync(path);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o640, pgUid, pgGid]);
    expect(readFileSync(path, 'utf8')).toBe('new\n');

    const fresh = join(work, 'fresh.conf');
    await t.writeFile(fresh, 'x');
    expect(statSync(fresh).mode & 0o777).toBe(0o644);
    expect(statSync(fresh).uid).toBe(0);
  });

  test('writeFile through a symlink writes the file it points at, as the local transport does', async () => {
    const t = transport(db2());
    const real = join(work, 'real.conf');
    const link = join(work, 'linked.conf');
    writeFileSync(real, 'a\n');
    symlinkSync(real, link);
    expect(await t.writeFile(link, 'b\n', { keepPrevious: true })).toEqual({ previousPath: `${real}${PREVIOUS_SUFFIX}` });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('b\n');
    expect(readFileSync(`${real}${PREVIOUS_SUFFIX}`, 'utf8')).toBe('a\n');
  });

  test('binary content round-trips through writeFile and readFile', async () => {
    const t = transport(db2());
    const data = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
    const path = join(pgdata, 'blob.bin');
    await t.writeFile(path, data, { become: 'postgres', mode: 0o600 });
    expect(readFileSync(path).equals(data)).toBe(true);
    const back = await t.readFile(path, { become: 'postgres' });
    expect(back?.equals(data)).toBe(true);
  });

  test('a failed write leaves the target untouched and no temp file behind', async () => {
    const t = transport(db2());
    const dir = join(work, 'failing');
    mkdirSync(dir);
    const path = join(dir, 'f.conf');
    writeFileSync(path, 'original\n');
    const err = await rejection(t.writeFile(path, 'new\n', { owner: 'pgplay-no-such-user' }));
    expect(err.code).toBe('STEP_FAILED');
    expect(err.message).toContain(`cannot write ${path} on db2 (127.0.0.3:${sshd.port}) as root`);
    expect(err.message).toContain('pgplay-no-such-user');
    expect(readFileSync(path, 'utf8')).toBe('original\n');
    expect(readdirSync(dir)).toEqual(['f.conf']);
    // postgres cannot write into root's directory: the error names the user it ran as.
    const denied = await rejection(t.writeFile(join(dir, 'g.conf'), 'x', { become: 'postgres' }));
    expect(denied.message).toMatch(/as postgres: .*Permission denied/);
  });

  test('readFile: content, missing file is null, unreadable file is an error', async () => {
    const t = transport(db2());
    const path = join(pgdata, 'PG_VERSION');
    writeFileSync(path, '15\n', { mode: 0o600 });
    chownSync(path, pgUid, pgGid);
    expect((await t.readFile(path, { become: 'postgres' }))?.toString()).toBe('15\n');
    expect((await t.readFile(path))?.toString()).toBe('15\n');
    expect(await t.readFile(join(pgdata, 'nope'), { become: 'postgres' })).toBeNull();
    expect(await t.readFile(join(work, 'no', 'such', 'dir'))).toBeNull();
    const secret = join(work, 'root-only');
    writeFileSync(secret, 'x', { mode: 0o600 });
    const err = await rejection(t.readFile(secret, { become: 'postgres' }));
    expect(err.code).toBe('STEP_FAILED');
    expect(err.message).toMatch(/cannot read .*root-only on db2 .* as postgres: .*Permission denied/);
  });

  test('stat: file, directory, symlink, missing', async () => {
    const t = transport(db2());
    const path = join(pgdata, 'stat-me');
    writeFileSync(path, '12345', { mode: 0o600 });
    chmodSync(path, 0o600);
    chownSync(path, pgUid, pgGid);
    expect(await t.stat(path, { become: 'postgres' })).toEqual({
      exists: true,
      type: 'file',
      mode: 0o600,
      owner: 'postgres',
      group: 'postgres',
      size: 5,
    });
    expect(await t.stat(pgdata)).toMatchObject({ exists: true, type: 'directory', mode: 0o700, owner: 'postgres' });
    const link = join(work, 'link');
    symlinkSync('target with space', link);
    expect(await t.stat(link)).toMatchObject({ exists: true, type: 'symlink', linkTarget: 'target with space', owner: 'root' });
    expect(await t.stat(join(pgdata, 'missing'), { become: 'postgres' })).toEqual({ exists: false });
  });
});

describe('host keys', () => {
  test('an unknown host key is refused with its fingerprint and how to trust it', async () => {
    const kh = join(work, 'empty_known_hosts');
    writeFileSync(kh, '');
    const err = await rejection(transport(db2({ knownHosts: kh })).exec(['true']));
    expect(err.code).toBe('TRANSPORT');
    expect(err.host).toBe('db2');
    expect(err.message).toContain(`the host key of db2 (127.0.0.3:${sshd.port}) is not known`);
    expect(err.message).toContain(sshd.hostKeyFingerprint);
    expect(err.hint).toContain(`[127.0.0.3]:${sshd.port} ${sshd.hostPublicKey}`);
    // A host that answers with a key nobody trusts is not a dead host (unreachable: tolerate must not hide it).
    expect(err.unreachable).toBe(false);
    expect(readFileSync(kh, 'utf8')).toBe('');
  });

  test('a changed host key is refused, loudly, with both fingerprints', async () => {
    const other = await sshd.generateKey('impostor', { authorize: false });
    const kh = join(work, 'changed_known_hosts');
    const otherPub = other.publicKey.split(' ').slice(0, 2).join(' ');
    writeFileSync(kh, `[127.0.0.3]:${sshd.port} ${otherPub}\n`);
    const otherFp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${other.path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
    for (const hostKeyChecking of ['strict', 'accept-new'] as const) {
      const err = await rejection(transport(db2({ knownHosts: kh, hostKeyChecking })).connect());
      expect(err.message).toContain(`HOST KEY CHANGED for db2 (127.0.0.3:${sshd.port})`);
      expect(err.message).toContain(sshd.hostKeyFingerprint);
      expect(err.message).toContain(otherFp);
      expect(err.unreachable).toBe(false);
    }
    expect(readFileSync(kh, 'utf8')).toBe(`[127.0.0.3]:${sshd.port} ${otherPub}\n`);
  });

  test('a hashed known_hosts entry (ssh-keygen -H) is accepted', async () => {
    const kh = join(work, 'hashed_known_hosts');
    writeFileSync(kh, readFileSync(sshd.knownHosts));
    execFileSync('ssh-keygen', ['-q', '-H', '-f', kh], { stdio: 'ignore' });
    expect(readFileSync(kh, 'utf8')).not.toContain('127.0.0.3');
    expect((await transport(db2({ knownHosts: kh })).exec(['echo', 'ok'])).stdout).toBe('ok');
  });

  test('knownHosts: accept-new adds the key to ~/.ssh/known_hosts', async () => {
    const home = join(work, 'home');
    mkdirSync(home);
    const saved = process.env.HOME;
    process.env.HOME = home;
    try {
      const added: string[] = [];
      const t = transport(db2({ knownHosts: 'accept-new', hostKeyChecking: undefined }), { onHostKeyAdded: (l) => added.push(l) });
      expect((await t.exec(['echo', 'ok'])).stdout).toBe('ok');
      const file = join(home, '.ssh', 'known_hosts');
      expect(readFileSync(file, 'utf8')).toBe(`[127.0.0.3]:${sshd.port} ${sshd.hostPublicKey}\n`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(join(home, '.ssh')).mode & 0o777).toBe(0o700);
      expect(added).toHaveLength(1);
    } finally {
      process.env.HOME = saved;
    }
  });

  test('accept-new appends the new key, reports it, and the file then works strictly', async () => {
    const kh = join(work, 'accept_new_known_hosts');
    const added: string[] = [];
    const t = transport(db2({ knownHosts: kh, hostKeyChecking: 'accept-new' }), { onHostKeyAdded: (l) => added.push(l) });
    expect((await t.exec(['echo', 'ok'])).stdout).toBe('ok');
    const line = `[127.0.0.3]:${sshd.port} ${sshd.hostPublicKey}`;
    expect(added).toEqual([line]);
    expect(readFileSync(kh, 'utf8')).toBe(`${line}\n`);
    expect((await transport(db2({ knownHosts: kh, hostKeyChecking: 'strict' })).exec(['echo', 'again'])).stdout).toBe('again');
    expect(readFileSync(kh, 'utf8')).toBe(`${line}\n`);
  });
});

describe('connection failures', () => {
  test('a key the server does not accept: authentication error naming host, address and user', async () => {
    const stranger = await sshd.generateKey('stranger', { authorize: false });
    const err = await rejection(transport(db2({ identityFile: stranger.path })).exec(['true']));
    expect(err.code).toBe('TRANSPORT');
    expect(err.host).toBe('db2');
    expect(err.message).toBe(
      `authentication failed for root@db2 (127.0.0.3:${sshd.port}): the server accepted none of: identity file ${stranger.path}`,
    );
    expect(err.unreachable).toBe(false);
  });

  test('an encrypted key uses the passphrase from its secret reference', async () => {
    const locked = await sshd.generateKey('locked', { passphrase: 'correct horse' });
    const ref = { env: 'PGPLAY_TEST_PASSPHRASE' };
    const seen: unknown[] = [];
    const ok = transport(db2({ identityFile: locked.path, passphrase: ref }), {
      resolveSecret: async (r) => {
        seen.push(r);
        return 'correct horse';
      },
    });
    expect((await ok.exec(['id', '-un'])).stdout).toBe('root');
    expect(seen).toEqual([ref]);

    const wrong = await rejection(transport(db2({ identityFile: locked.path, passphrase: ref }), { resolveSecret: async () => 'nope' }).connect());
    expect(wrong.message).toContain(`cannot decrypt the identity file ${locked.path} for db2: wrong passphrase (from environment variable PGPLAY_TEST_PASSPHRASE)`);
    const none = await rejection(transport(db2({ identityFile: locked.path })).connect());
    expect(none.message).toContain('is encrypted and no passphrase is configured');
  });

  test('ssh-agent authentication through a given socket', async () => {
    const key = await sshd.generateKey('agent-only');
    const socket = join(work, 'agent.sock');
    const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      await until('agent socket', () => existsSync(socket));
      execFileSync('ssh-add', ['-q', key.path], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
      const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${key.path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
      const t = transport(db2({ identityFile: undefined, agent: socket }));
      expect((await t.exec(['echo', 'via agent'])).stdout).toBe('via agent');
      expect(sshd.logs()).toContain(`Accepted publickey for root from 127.0.0.1`);
      expect(sshd.logs()).toMatch(new RegExp(`Accepted publickey for root .* ED25519 ${fp.replace(/[+/]/g, '\\$&')}`));
      // agent: true means the agent of SSH_AUTH_SOCK, as ssh uses it.
      const saved = process.env.SSH_AUTH_SOCK;
      process.env.SSH_AUTH_SOCK = socket;
      try {
        expect((await transport(db2({ identityFile: undefined, agent: true })).exec(['echo', 'env agent'])).stdout).toBe('env agent');
      } finally {
        if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
        else process.env.SSH_AUTH_SOCK = saved;
      }
    } finally {
      const exited = new Promise((r) => agent.once('exit', r));
      agent.kill('SIGTERM');
      await exited;
    }
  });

  test('nothing listening on the port: connection refused, naming host, address and user', async () => {
    const port = await closedPort('127.0.0.3');
    const err = await rejection(transport(db2({ port })).exec(['true']));
    expect(err.code).toBe('TRANSPORT');
    expect(err.message).toBe(`cannot connect to db2 (127.0.0.3:${port}) as root: connection refused (nothing listens on that port)`);
    // What a machine whose sshd is gone looks like: the transport classifies it (unreachable: tolerate).
    expect(err.unreachable).toBe(true);
  });

  test('a server that never speaks SSH: connect timeout', async () => {
    const accepted: Socket[] = [];
    const silent = createServer((c) => accepted.push(c));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.3', () => r()));
    try {
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const err = await rejection(transport(db2({ port, connectTimeout: '1s' })).connect());
      expect(err.message).toBe(`cannot connect to db2 (127.0.0.3:${port}) as root: no SSH session within 1s (connection.connectTimeout)`);
      expect(err.unreachable).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const c of accepted) c.destroy();
      await closeServer(silent);
    }
  });

  test('a host that stops answering is detected by keepalive, failing the running command', async () => {
    const t = transport(db2({ keepaliveInterval: '300ms' }));
    const before = new Set(sshd.connectionPids());
    await t.connect();
    const [conn] = await until('the new connection process', () => sshd.connectionPids().filter((p) => !before.has(p)));
    const pending = rejection(t.exec(['sleep', '42']));
    await until('the remote sleep', () => runningUnder(conn!, 'sleep 42'));
    // Freeze the server side of this connection: TCP stays up, SSH stops answering.
    const frozen = [conn!, ...descendants(conn!)];
    for (const p of frozen) process.kill(p, 'SIGSTOP');
    try {
      const started = Date.now();
      const err = await pending;
      expect(err.code).toBe('TRANSPORT');
      expect(err.message).toMatch(new RegExp(`^connection to db2 \\(127\\.0\\.0\\.3:${sshd.port}\\) lost while running: sleep 42 \\(Keepalive timeout\\)`));
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const p of frozen) process.kill(p, 'SIGCONT');
      sshd.killConnection(conn!);
    }
  });

  test('a connection killed mid-command fails that command with a TRANSPORT error naming the host; the next call reconnects', async () => {
    const t = transport(db2());
    const before = new Set(sshd.connectionPids());
    await t.connect();
    const mine = await until('the new connection process', () => sshd.connectionPids().filter((p) => !before.has(p)));
    expect(mine).toHaveLength(1);
    const pending = t.exec(['sleep', '41']);
    await until('the remote sleep', () => runningUnder(mine[0]!, 'sleep 41'));
    sshd.killConnection(mine[0]!);
    const err = await rejection(pending);
    expect(err.code).toBe('TRANSPORT');
    expect(err.host).toBe('db2');
    expect(err.message).toMatch(new RegExp(`^connection to db2 \\(127\\.0\\.0\\.3:${sshd.port}\\) lost while running: sleep 41`));
    // Lost while a command ran: it may have done its work; only a connection that cannot be opened is unreachable.
    expect(err.unreachable).toBe(false);
    expect((await t.exec(['echo', 'back'])).stdout).toBe('back');
    expect(t.connectionsOpened).toBe(2);
  });
});

describe('one connection per host', () => {
  test('50 commands (10 at a time on the wire) share one SSH connection', async () => {
    const t = transport(db2());
    const loginsBefore = acceptedLogins();
    const connsBefore = new Set(sshd.connectionPids());
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => t.exec(['echo', `n${i}`])));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 50 }, (_, i) => `n${i}`));
    expect(acceptedLogins() - loginsBefore).toBe(1);
    expect(sshd.connectionPids().filter((p) => !connsBefore.has(p))).toHaveLength(1);
    expect(t.connectionsOpened).toBe(1);
    await t.close();
    await until('the connection process to exit', () => sshd.connectionPids().filter((p) => !connsBefore.has(p)).length === 0);
  });

  test('a server with MaxSessions 2: parallel commands queue instead of failing', async () => {
    await onTinyServer('127.0.0.5', async (t) => {
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => t.exec(['sh', '-c', `sleep 0.2; echo ${i}`])));
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
      expect(results.every((r) => r.exitCode === 0)).toBe(true);
    });
  });

  test('close() while a command runs fails it as closed, and the connection goes away', async () => {
    const t = transport(db2());
    await t.connect();
    const failed = rejection(t.exec(['sleep', '5']));
    await new Promise((r) => setTimeout(r, 500));
    await t.close();
    const err = await failed;
    expect(err.message).toMatch(/^connection to db2 \(127\.0\.0\.3:\d+\) was closed while running: sleep 5/);
  });
});

describe('commands through a helper session', () => {
  /** Sessions sshd started for commands since `mark` (one per command run directly, one per helper). */
  const sessionsSince = (mark: number): number => sshd.logs().slice(mark).match(/Starting session: command for root/g)?.length ?? 0;
  /** A user's first commands take sessions of their own (ssh.ts); these make the next ones go to a helper. */
  async function warm(t: SshTransport, become?: string): Promise<void> {
    for (let i = 0; i < 3; i++) expect((await t.exec(['true'], { become })).exitCode).toBe(0);
  }
  const perlHelpers = (): number[] =>
    sshd.connectionPids().flatMap((conn) =>
      descendants(conn).filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('perl\0-e\0');
        } catch {
          return false;
        }
      }),
    );

  test('after a user\'s first three commands, one session runs the rest, with the results a session of their own gives', async () => {
    const t = transport(db2());
    await warm(t);
    await warm(t, 'postgres');
    const mark = sshd.logs().length;
    expect(await t.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toMatchObject({ exitCode: 3, stdout: 'out', stderr: 'err', timedOut: false });
    const blob = randomBytes(300_000);
    expect((await t.exec(['sha256sum'], { stdin: blob })).stdout).toBe(`${createHash('sha256').update(blob).digest('hex')}  -`);
    expect(await t.exec(['cat'])).toMatchObject({ exitCode: 0, stdout: '' });
    expect((await t.exec(['sh', '-c', 'printf %s "$FOO"'], { env: { FOO: "bar 'baz'" } })).stdout).toBe("bar 'baz'");
    // Where a session of its own would run: the login's home for the login user, / for another user.
    expect((await t.exec(['sh', '-c', 'echo "$(id -un):$(pwd)"'])).stdout).toBe('root:/root');
    expect((await t.exec(['sh', '-c', 'echo "$(id -un):$(pwd):$V"'], { become: 'postgres', env: { V: 'v1' } })).stdout).toBe('postgres:/:v1');
    const missing = await rejection(t.exec(['pgplay-no-such-program', 'x']));
    expect(missing.message).toBe('cannot run pgplay-no-such-program: command not found');
    expect((await t.exec(['sh', '-c', 'kill -TERM $$'])).exitCode).toBe(143);
    // Files go the same way: written, read, stat'ed as postgres.
    const pgDir = join(work, 'helper-files');
    mkdirSync(pgDir);
    chownSync(pgDir, pgUid, pgGid);
    const file = join(pgDir, 'file');
    await t.writeFile(file, 'through the helper\n', { mode: 0o640, become: 'postgres' });
    expect(await t.readFile(file, { become: 'postgres' })).toEqual(Buffer.from('through the helper\n'));
    expect(await t.stat(file, { become: 'postgres' })).toMatchObject({ exists: true, type: 'file', mode: 0o640, owner: 'postgres' });
    expect(statSync(file).uid).toBe(pgUid);
    // Twelve commands, two sessions: one helper per user.
    expect(await until('the helpers\' sessions in the log', () => sessionsSince(mark) || undefined)).toBe(2);
    expect(perlHelpers()).toHaveLength(2);
    await t.close();
    // close() ends them: no helper is left on the host.
    await until('the helpers to exit', () => perlHelpers().length === 0);
  });

  test('a timeout or an interrupt stops the command\'s process group, not the helper', async () => {
    const t = transport(db2());
    const pids = join(work, 'helper-pids');
    mkdirSync(pids);
    chmodSync(pids, 0o1777);
    for (const become of [undefined, 'postgres']) {
      await warm(t, become);
      const pidFile = join(pids, `sleeper-${become ?? 'root'}`);
      const mark = sshd.logs().length;
      const r = await t.exec(['sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 700, become });
      expect(r.timedOut).toBe(true);
      expect(r.exitCode).toBe(143);
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      // The whole group went: the shell's background sleep too.
      await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 5_000);
      expect((await t.exec(['id', '-un'], { become })).stdout).toBe(become ?? 'root');
      // The command ran in the helper's session; stopping it took one session (kill) besides.
      expect(sessionsSince(mark)).toBeLessThanOrEqual(3);
    }
    const controller = new AbortController();
    const pidFile = join(pids, 'aborted');
    const pending = t.exec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { signal: controller.signal, become: 'postgres' });
    await until('the remote sleep', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'));
    controller.abort();
    expect((await rejection(pending)).code).toBe('INTERRUPTED');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 5_000);
  });

  test('on a server with MaxSessions 2, helpers give their slots back to waiting sessions: nothing waits for ever', async () => {
    await onTinyServer('127.0.0.6', async (t) => {
      await warm(t);
      await warm(t, 'postgres');
      const pidFile = join(work, 'tiny-sleeper');
      // Helpers of two users take both slots; then commands of both users at once, one with a timeout whose
      // stop needs a session of its own (kill), and streams, which never go through a helper.
      for (let round = 0; round < 2; round++) {
        rmSync(pidFile, { force: true });
        const started = Date.now();
        const results = await Promise.all([
          ...Array.from({ length: 6 }, (_, i) => t.exec(['sh', '-c', `sleep 0.1; echo ${i}`], { become: i % 2 ? 'postgres' : undefined })),
          t.exec(['sh', '-c', `echo $$ > ${pidFile}; exec sleep 30`], { timeoutMs: 500 }),
        ]);
        expect(results.slice(0, 6).map((r) => r.stdout)).toEqual(['0', '1', '2', '3', '4', '5']);
        // Stopped by TERM (143), or, when its kill found no session in time, given up on after the grace (124).
        expect(results[6]!.timedOut).toBe(true);
        expect([143, 124]).toContain(results[6]!.exitCode);
        expect(Date.now() - started).toBeLessThan(8_000);
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        await until(`remote sleep ${pid} to be gone`, () => !existsSync(`/proc/${pid}`), 8_000);
        const stream = await t.openStream(['cat']);
        const echoed = new Promise<string>((resolve) => stream.once('data', (d: Buffer) => resolve(d.toString())));
        stream.write('through a stream\n');
        expect(await echoed).toBe('through a stream\n');
        stream.end();
      }
    });
  });

  test('a helper writes files itself, as the write script does: mode, owner, kept previous file, links, failures', async () => {
    const t = transport(db2());
    await warm(t);
    await warm(t, 'postgres');
    const dir = join(work, 'helper-writes');
    mkdirSync(dir);
    chownSync(dir, pgUid, pgGid);
    const helpersBefore = perlHelpers();
    expect(helpersBefore).toHaveLength(0);
    // As postgres, new: 0600 postgres:postgres; replaced: a new inode, the previous content kept beside it.
    const conf = join(dir, 'postgresql.auto.conf');
    expect(await t.writeFile(conf, "a = 'one'\n", { mode: 0o600, owner: 'postgres', group: 'postgres', become: 'postgres', keepPrevious: true })).toEqual({});
    let st = statSync(conf);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, pgUid, pgGid]);
    const inode = st.ino;
    expect(await t.writeFile(conf, "a = 'two'\n", { mode: 0o600, become: 'postgres', keepPrevious: true })).toEqual({ previousPath: `${conf}${PREVIOUS_SUFFIX}` });
    st = statSync(conf);
    expect([readFileSync(conf, 'utf8'), st.ino === inode, st.mode & 0o7777, st.uid]).toEqual(["a = 'two'\n", false, 0o600, pgUid]);
    expect(readFileSync(`${conf}${PREVIOUS_SUFFIX}`, 'utf8')).toBe("a = 'one'\n");
    // Written by the helper itself: the helpers that ran it are the only processes under the connection.
    expect(perlHelpers().length).toBeGreaterThan(0);
    // As root: an existing file keeps its mode and owner; a new one follows the umask.
    const kept = join(dir, 'kept.conf');
    writeFileSync(kept, 'old\n');
    chmodSync(kept, 0o640);
    chownSync(kept, pgUid, pgGid);
    await t.writeFile(kept, 'new\n');
    st = statSync(kept);
    expect([readFileSync(kept, 'utf8'), st.mode & 0o7777, st.uid, st.gid]).toEqual(['new\n', 0o640, pgUid, pgGid]);
    const fresh = join(dir, 'fresh.conf');
    await t.writeFile(fresh, 'x');
    expect([statSync(fresh).mode & 0o777, statSync(fresh).uid]).toEqual([0o644, 0]);
    // Through a link: the file it points at; a link to nothing is replaced by the file.
    const real = join(dir, 'real.conf');
    writeFileSync(real, 'a\n');
    symlinkSync(real, join(dir, 'linked.conf'));
    expect(await t.writeFile(join(dir, 'linked.conf'), 'b\n', { keepPrevious: true })).toEqual({ previousPath: `${real}${PREVIOUS_SUFFIX}` });
    expect([lstatSync(join(dir, 'linked.conf')).isSymbolicLink(), readFileSync(real, 'utf8')]).toEqual([true, 'b\n']);
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.conf'));
    await t.writeFile(join(dir, 'dangling.conf'), 'c\n');
    expect([lstatSync(join(dir, 'dangling.conf')).isFile(), readFileSync(join(dir, 'dangling.conf'), 'utf8')]).toEqual([true, 'c\n']);
    // Binary content, byte for byte.
    const blob = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(200_000)]);
    await t.writeFile(join(dir, 'blob.bin'), blob, { become: 'postgres', mode: 0o600 });
    expect(readFileSync(join(dir, 'blob.bin')).equals(blob)).toBe(true);
    // Failures leave the target as it was and no temp file: an unknown owner, a directory, a path ending
    // in /, a directory postgres may not write in.
    const before = readdirSync(dir).sort();
    const unknown = await rejection(t.writeFile(kept, 'never\n', { owner: 'pgplay-no-such-user' }));
    expect(unknown.message).toBe(`cannot write ${kept} on db2 (127.0.0.3:${sshd.port}) as root: chown: invalid user: 'pgplay-no-such-user'`);
    expect(readFileSync(kept, 'utf8')).toBe('new\n');
    expect((await rejection(t.writeFile(dir, 'x'))).message).toContain('it exists and is not a regular file');
    expect((await rejection(t.writeFile(`${dir}/missing/`, 'x'))).message).toContain('not a file path (it ends with /)');
    const denied = await rejection(t.writeFile(join(work, 'root-owned.conf'), 'x', { become: 'postgres' }));
    expect(denied.message).toMatch(/as postgres: mktemp: failed to create file via template .*: Permission denied$/);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(join(work, 'root-owned.conf'))).toBe(false);
  });

  test('a connection killed while a helper runs a command fails it as lost; the next call reconnects', async () => {
    const t = transport(db2());
    const before = new Set(sshd.connectionPids());
    await warm(t);
    const [conn] = await until('the new connection process', () => sshd.connectionPids().filter((p) => !before.has(p)));
    const pending = t.exec(['sleep', '44']);
    await until('the remote sleep', () => runningUnder(conn!, 'sleep 44'));
    expect(perlHelpers().length).toBeGreaterThan(0);
    sshd.killConnection(conn!);
    const err = await rejection(pending);
    expect(err.code).toBe('TRANSPORT');
    expect(err.message).toMatch(new RegExp(`^connection to db2 \\(127\\.0\\.0\\.3:${sshd.port}\\) lost while running: sleep 44`));
    expect((await t.exec(['echo', 'back'])).stdout).toBe('back');
    expect(t.connectionsOpened).toBe(2);
  });
});

describe('jump host', () => {
  test('reaches a host through another one (forwardOut + sock)', async () => {
    // A rig of its own at DEBUG1, where sshd logs the TCP connections it forwards. (DEBUG1 also
    // leaks sshd debug lines into commands' stderr, so the other tests use the quieter rig.)
    const rig = await startSshd({ addresses: ['127.0.0.6', '127.0.0.7'], logLevel: 'DEBUG1' });
    try {
      const t = transport(sshHost(rig, 'db3', '127.0.0.7'), { jump: sshHost(rig, 'bastion', '127.0.0.6') });
      const r = await t.exec(['id', '-un'], { become: 'postgres' });
      expect(r.stdout).toBe('postgres');
      expect(t.connectionsOpened).toBe(1);
      // The bastion's sshd opened the TCP connection to the target for us.
      expect(rig.logs()).toMatch(new RegExp(`server_request_direct_tcpip: originator 127\\.0\\.0\\.1 port 0, target 127\\.0\\.0\\.7 port ${rig.port}`));
      expect(rig.logs().match(/Accepted publickey for root/g)).toHaveLength(2);
      await t.close();

      // ProxyJump written as user@address:port borrows the target's key and known_hosts.
      const target = sshHost(rig, 'db4', '127.0.0.7');
      const jump = resolveJumpHost(`root@127.0.0.6:${rig.port}`, {}, target);
      expect(jump).toMatchObject({ name: `root@127.0.0.6:${rig.port}`, address: '127.0.0.6', connection: { user: 'root', port: rig.port } });
      expect(jump.connection.become).toBeUndefined();
      const viaSpec = transport(target, { jump });
      expect((await viaSpec.exec(['echo', 'through'])).stdout).toBe('through');
      expect(rig.logs().match(/server_request_direct_tcpip: .* target 127\.0\.0\.7/g)).toHaveLength(2);
    } finally {
      await rig.stop();
    }
  });

  test('a jump spec that is neither a host nor an address is a SEMANTIC error', () => {
    const target = sshHost(sshd, 'db3', '127.0.0.4');
    expect(() => resolveJumpHost('root@:22:x', { db3: target }, target)).toThrow(
      /connection.jump "root@:22:x" of db3 is neither an inventory host nor \[user@\]address\[:port\]/,
    );
    expect(resolveJumpHost('db3', { db3: target }, target)).toBe(target);
    expect(resolveJumpHost('[::1]:2200', {}, target)).toMatchObject({ address: '::1', connection: { port: 2200, user: 'root' } });
  });

  test('an unreachable target behind the jump host is named in the error', async () => {
    const port = await closedPort('127.0.0.4');
    const t = transport(sshHost(sshd, 'db3', '127.0.0.4', { port }), { jump: sshHost(sshd, 'bastion', '127.0.0.2') });
    const err = await rejection(t.connect());
    expect(err.code).toBe('TRANSPORT');
    expect(err.message).toMatch(new RegExp(`^cannot reach db3 \\(127\\.0\\.0\\.4:${port}\\) through the jump host bastion \\(127\\.0\\.0\\.2:${sshd.port}\\)`));
    expect(err.unreachable).toBe(true);
  });
});

describe('openStream', () => {
  test('an exec channel as a duplex stream, as the become user', async () => {
    const t = transport(db2());
    const stream = await t.openStream(['sh', '-c', 'id -un; exec cat'], { become: 'postgres' });
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    const ended = new Promise((r) => stream.once('end', r));
    stream.write('ping\n');
    await until('the echo', () => Buffer.concat(chunks).toString().includes('ping'));
    stream.end();
    await ended;
    expect(Buffer.concat(chunks).toString()).toBe('postgres\nping\n');
  });

  test('a stream command that fails on its own reports its exit status and stderr', async () => {
    const t = transport(db2());
    const stream = await t.openStream(['sh', '-c', 'echo oops >&2; exit 3']);
    const err = await new Promise<Error>((resolve) => {
      stream.once('error', resolve);
      stream.resume();
    });
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.message).toBe(`sh -c 'echo oops >&2; exit 3' on db2 (127.0.0.3:${sshd.port}) exited with 3: oops`);
  });

  test('a stream whose connection is lost ends with a TRANSPORT error naming the host', async () => {
    const t = transport(db2());
    const before = new Set(sshd.connectionPids());
    const stream = await t.openStream(['sleep', '43']);
    const [conn] = await until('the new connection process', () => sshd.connectionPids().filter((p) => !before.has(p)));
    await until('the remote sleep', () => runningUnder(conn!, 'sleep 43'));
    const failed = new Promise<Error>((resolve) => stream.once('error', resolve));
    sshd.killConnection(conn!);
    const err = await failed;
    expect(err).toBeInstanceOf(PgplayError);
    expect(err.message).toMatch(new RegExp(`^connection to db2 \\(127\\.0\\.0\\.3:${sshd.port}\\) lost while running: sleep 43`));
  });

  test('bridges to a unix socket through socat running as the become user', async () => {
    const dir = join(work, 'sock');
    mkdirSync(dir, { mode: 0o755 });
    const path = join(dir, '.s.PGSQL.test');
    const server = createServer((c) => {
      c.on('data', (d) => c.write(`echo:${d.toString()}`));
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
    chmodSync(path, 0o777);
    try {
      const t = transport(db2());
      const stream = await t.openStream(['socat', '-', `UNIX-CONNECT:${path}`], { become: 'postgres' });
      const got: Buffer[] = [];
      stream.on('data', (d: Buffer) => got.push(d));
      stream.write('hello');
      await until('the reply', () => Buffer.concat(got).toString() === 'echo:hello');
      stream.end();
    } finally {
      await closeServer(server);
    }
  });
});

async function closedPort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, address, () => r()));
  const port = (server.address() as { port: number }).port;
  await closeServer(server);
  return port;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((r) => server.close(() => r()));
}
