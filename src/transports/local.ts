import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { constants as osConstants, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Duplex, type Readable, type Writable } from 'node:stream';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { keptPrevious, MISSING_STATUS, parseStat, readFileArgv, statArgv, writeFileArgv } from './file-commands.js';
import { becomeArgv, usesRunuser, type BecomeMethod } from './become.js';
import { outputText, startChild, type Child } from './child.js';
import { ExecServers, MAX_SERVERS, spawnedHelper } from './exec-server.js';
import {
  PREVIOUS_SUFFIX,
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type FileType,
  type ReadOptions,
  type Transport,
  type WriteFileOptions,
  type WriteFileResult,
} from './types.js';

/** Time a child gets between SIGTERM and SIGKILL when it is stopped (timeout, abort, close). */
const KILL_GRACE_MS = 3000;

export interface LocalTransportOptions {
  /**
   * How files are read and written when `become` names another user. `auto`: directly when this process
   * is root (or no other user is involved), else through `sudo -n` commands. `commands` forces the
   * command path, so it can be exercised as root (it then goes through runuser).
   */
  fileAccess?: 'auto' | 'commands';
  /**
   * Local transports given the same scope (a run's hosts on this machine) share their command helpers:
   * a helper started for one host serves the others' commands as that user (each helper start is a
   * fork of this process, a runuser and a perl), and the last of them to close ends the helpers.
   * Without one, each transport has helpers of its own.
   */
  helperScope?: object;
}

/** The helpers of each scope, and how many of its transports are open. */
const sharedHelpers = new WeakMap<object, { servers: ExecServers; transports: number }>();

/**
 * Runs commands and file operations on this machine. Every child runs in its own process group so a
 * timeout or an abort stops the whole tree it started (a shell's children, runuser's child), not just
 * the direct child.
 */
export class LocalTransport implements Transport {
  readonly kind = 'local' as const;
  readonly hostName: string;
  private readonly currentUser: string;
  private readonly isRoot: boolean;
  private readonly becomeMethod: BecomeMethod;
  private readonly fileAccess: 'auto' | 'commands';
  private readonly live = new Set<Child>();
  /** Those of `live` that are streams (openStream: a connection's bridge). */
  private readonly streams = new WeakSet<Child>();
  private readonly ids = machineIds;
  /** The helpers that run commands as other users (one runuser each, not one per command). */
  private readonly servers: ExecServers;
  /** The scope whose helpers this transport shares, and whether it still holds its share (close() gives it back). */
  private readonly scope: object | undefined;
  private holdsShare = false;
  private prestarted = false;

  constructor(
    private readonly host: Host,
    options: LocalTransportOptions = {},
  ) {
    this.hostName = host.name;
    const me = userInfo();
    this.currentUser = me.username;
    this.isRoot = me.uid === 0;
    this.becomeMethod = host.connection.becomeMethod ?? 'auto';
    this.fileAccess = options.fileAccess ?? 'auto';
    const scope = (this.scope = options.helperScope);
    if (!scope) {
      this.servers = localHelpers(this.currentUser, MAX_SERVERS);
      return;
    }
    let entry = sharedHelpers.get(scope);
    if (!entry) {
      // As many helpers per user as the transports would have had each.
      const created: { servers: ExecServers; transports: number } = { servers: localHelpers(this.currentUser, () => MAX_SERVERS * created.transports), transports: 0 };
      sharedHelpers.set(scope, (entry = created));
    }
    entry.transports++;
    this.servers = entry.servers;
    this.holdsShare = true;
  }

  async connect(): Promise<void> {}

  /**
   * The run is about to use this host (engine: every involved host, before the journal and the locks):
   * a database host's first command is its facts, run as the PGDATA owner, whose helper starts now,
   * beside that work, instead of on that command. A host without PGDATA reads its facts as the
   * connection user: no helper is started for it (starting a process costs this process a fork).
   */
  preconnect(): void {
    const owner = this.host.pgdata ? this.host.postgres.osUser : undefined;
    if (owner && owner !== this.currentUser && this.usesRunuser() && !this.prestarted) {
      this.prestarted = true;
      this.servers.prestart(owner);
    }
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new PgplayError({ code: 'TRANSPORT', message: 'empty command', host: this.hostName });
    const full = this.wrap(argv, options.become, options.env);
    const started = Date.now();
    const child =
      (await this.served(argv, options)) ??
      startChild(full[0]!, full.slice(1), {
        // As over SSH: another user may not enter pgplay's own working directory (say /root).
        cwd: options.cwd ?? (options.become && options.become !== this.currentUser ? '/' : undefined),
        env: options.env,
        input: options.stdin,
      });
    let timedOut = false;
    const stop = this.track(child);
    const timer =
      options.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            stop();
          }, options.timeoutMs)
        : undefined;
    const onAbort = () => stop();
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const result = await child.done;
      if (result.startError) {
        const code = result.startError.code;
        const badCwd = code === 'ENOENT' && options.cwd !== undefined && !(await isDirectory(options.cwd));
        throw this.cannotStart(argv, badCwd ? options.cwd : undefined, code, result.startError.message);
      }
      return {
        argv,
        exitCode: result.exitCode ?? 128 + (osConstants.signals[result.signal as keyof typeof osConstants.signals] ?? 1),
        stdout: outputText(result.stdout),
        stderr: outputText(result.stderr),
        durationMs: Date.now() - started,
        timedOut,
      };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async readFile(path: string, options: ReadOptions = {}): Promise<Buffer | null> {
    if (this.viaCommands(options.become)) {
      const r = await this.run(readFileArgv(path), options.become, { buffer: true });
      if (r.exitCode === MISSING_STATUS) return null;
      if (r.exitCode !== 0) throw this.ioError('read', path, r.stderrText);
      return r.stdoutBuffer;
    }
    try {
      return await fs.readFile(path);
    } catch (e) {
      if (isMissing(e)) return null;
      throw this.ioError('read', path, e);
    }
  }

  async stat(path: string, options: ReadOptions = {}): Promise<FileStat> {
    if (this.viaCommands(options.become)) return this.statViaCommands(path, options.become);
    let st;
    try {
      st = await fs.lstat(path);
    } catch (e) {
      if (isMissing(e)) return { exists: false };
      throw this.ioError('stat', path, e);
    }
    const type: FileType = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
    // Both names at once: a first stat on this machine asks getent twice, side by side rather than in turn.
    const [owner, group] = await Promise.all([this.ids.userName(st.uid), this.ids.groupName(st.gid)]);
    return {
      exists: true,
      type,
      mode: st.mode & 0o7777,
      owner,
      group,
      size: st.size,
      ...(type === 'symlink' ? { linkTarget: await fs.readlink(path) } : {}),
    };
  }

  async writeFile(path: string, data: string | Buffer, options: WriteFileOptions = {}): Promise<WriteFileResult> {
    if (this.viaCommands(options.become)) return this.writeViaCommands(path, data, options);
    const target = await this.resolveLink(path);
    const dir = dirname(target);
    const existing = await fs.lstat(target).catch((e) => {
      if (isMissing(e)) return undefined;
      throw this.ioError('write', path, e);
    });
    if (existing && !existing.isFile()) throw this.ioError('write', path, 'it exists and is not a regular file');
    const becomeOther = options.become && options.become !== this.currentUser ? options.become : undefined;
    // A replaced file keeps its owner and mode unless asked otherwise; a new one belongs to the become user.
    const ownerName = options.owner ?? (existing ? undefined : becomeOther);
    const uid = ownerName !== undefined ? (await this.ids.user(ownerName, this.hostName)).uid : existing?.uid;
    const gid =
      options.group !== undefined
        ? await this.ids.gid(options.group, this.hostName)
        : existing
          ? existing.gid
          : ownerName !== undefined
            ? (await this.ids.user(ownerName, this.hostName)).gid
            : undefined;
    const mode = options.mode ?? (existing ? existing.mode & 0o7777 : 0o666 & ~process.umask());

    const tmp = join(dir, `.${basename(target)}.pgplay-tmp-${randomBytes(6).toString('hex')}`);
    let handle: fs.FileHandle | undefined;
    let result: WriteFileResult = {};
    try {
      // 0600 from the first byte: a secret is never readable by others, not even for a moment.
      handle = await fs.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
      await handle.writeFile(data);
      if (uid !== undefined || gid !== undefined) await handle.chown(uid ?? -1, gid ?? -1);
      // After chown, which clears set-id bits.
      await handle.chmod(mode);
      await handle.sync();
      await handle.close();
      handle = undefined;
      if (options.keepPrevious && existing) result = { previousPath: await this.keepPrevious(target) };
      await fs.rename(tmp, target);
    } catch (e) {
      await handle?.close().catch(() => {});
      await fs.unlink(tmp).catch(() => {});
      throw this.ioError('write', path, e);
    }
    await fsyncDirectory(dir);
    return result;
  }

  async openStream(argv: string[], options: { become?: string } = {}): Promise<Duplex> {
    const full = this.wrap(argv, options.become);
    const child = startChild(full[0]!, full.slice(1), { io: 'stream' });
    const stop = this.track(child);
    this.streams.add(child);
    if (child.process.pid === undefined) {
      const { startError } = await child.done;
      throw this.cannotStart(argv, undefined, startError?.code, startError?.message ?? '');
    }
    return new ChildStream(child.process.stdin!, child.process.stdout!, stop);
  }

  canStop(become?: string): boolean {
    return this.isRoot || !become || become === this.currentUser;
  }

  /** Another user's socket through that user's helper, which becomes the bridge (exec-server.ts). */
  async openUnixSocket(socketPath: string, options: { become?: string }): Promise<Duplex | undefined> {
    const user = options.become;
    if (!user || user === this.currentUser || !this.usesRunuser()) return undefined;
    const stream = await this.servers.openSocket(user, socketPath);
    return stream && new ChildStream(stream.stdin, stream.stdout, stream.stop);
  }

  /**
   * Stops every child this transport started that is still running (streams, abandoned commands). A
   * stream (a connection's bridge) is ended rather than signalled: at the end of its input it passes on
   * what was written to it first (a connection's Terminate, which a run's end writes just before) and
   * exits once the server has closed; one that has not within KILL_GRACE_MS is stopped as a command is.
   */
  async close(): Promise<void> {
    const running = [...this.live];
    for (const child of running) {
      if (!this.streams.has(child) || !child.process.stdin) {
        killGroup(child, 'SIGTERM');
        continue;
      }
      child.process.stdin.end();
      const stop = setTimeout(() => killGroup(child, 'SIGTERM'), KILL_GRACE_MS);
      void child.done.then(() => clearTimeout(stop));
    }
    await Promise.all(running.map((c) => c.done));
    if (!this.scope) {
      await this.servers.close();
    } else if (this.holdsShare) {
      this.holdsShare = false;
      const entry = sharedHelpers.get(this.scope)!;
      if (--entry.transports === 0) {
        sharedHelpers.delete(this.scope);
        await this.servers.close();
      }
    }
  }

  /**
   * A command as another user through runuser goes to one of that user's long-lived helpers
   * (exec-server.ts) instead of a runuser of its own; undefined when it cannot (a working directory other
   * than /, where the helpers run; no helper), and it runs directly.
   */
  private async served(argv: string[], options: ExecOptions): Promise<Child | undefined> {
    const user = options.become;
    if (!user || user === this.currentUser || !this.usesRunuser() || (options.cwd !== undefined && options.cwd !== '/')) return undefined;
    const command = await this.servers.run(user, argv, options.env ?? {}, options.stdin);
    if (!command) return undefined;
    const pid = await command.pid;
    // What track() and killGroup() use of a child: its pid (a process group of its own) and kill.
    const process_ = { pid, kill: (signal: NodeJS.Signals) => pid !== undefined && process.kill(pid, signal) } as unknown as Child['process'];
    return { process: process_, done: command.done };
  }

  private wrap(argv: string[], become: string | undefined, env?: Record<string, string>): string[] {
    const other = become && become !== this.currentUser;
    let inner = argv;
    // sudo resets the environment; pass the caller's variables explicitly so both paths see them.
    if (other && env && Object.keys(env).length > 0 && !this.usesRunuser()) {
      inner = ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
    }
    return becomeArgv(inner, become, this.currentUser, this.becomeMethod);
  }

  private usesRunuser(): boolean {
    return usesRunuser(this.becomeMethod, this.isRoot);
  }

  private viaCommands(become: string | undefined): boolean {
    const other = !!become && become !== this.currentUser;
    if (this.fileAccess === 'commands') return other;
    return other && !this.isRoot;
  }

  /** Registers a child until it exits; the returned function stops its whole process group. */
  private track(child: Child): () => void {
    this.live.add(child);
    liveGroups.add(child);
    let stopping = false;
    const done = () => {
      this.live.delete(child);
      liveGroups.delete(child);
    };
    void child.done.then(done);
    return () => {
      if (stopping || !this.live.has(child)) return;
      stopping = true;
      killGroup(child, 'SIGTERM');
      const force = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
      force.unref();
      void child.done.then(() => clearTimeout(force));
    };
  }

  private async run(
    argv: string[],
    become: string | undefined,
    opts: { buffer?: boolean; stdin?: string | Buffer } = {},
  ): Promise<{ exitCode: number; stdoutBuffer: Buffer; stdoutText: string; stderrText: string }> {
    // The C locale keeps tool messages (which end up in errors) plain ASCII English on every host.
    const env = { LC_ALL: 'C' };
    const full = this.wrap(argv, become, env);
    const child = startChild(full[0]!, full.slice(1), { env, input: opts.stdin });
    this.track(child);
    const result = await child.done;
    if (result.startError) throw this.cannotStart(full, undefined, result.startError.code, result.startError.message);
    return {
      exitCode: result.exitCode ?? 1,
      stdoutBuffer: result.stdout,
      stdoutText: result.stdout.toString('utf8'),
      stderrText: result.stderr.toString('utf8').trim(),
    };
  }

  private async statViaCommands(path: string, become: string | undefined): Promise<FileStat> {
    const r = await this.run(statArgv(path), become);
    if (r.exitCode === MISSING_STATUS) return { exists: false };
    if (r.exitCode !== 0) throw this.ioError('stat', path, r.stderrText);
    return parseStat(r.stdoutText);
  }


  /**
   * The same atomic write as the direct path, as one shell script run as the become user (sudo -n when
   * this process is not root). Data arrives on stdin; the temp file is removed by a trap on any failure.
   */
  private async writeViaCommands(path: string, data: string | Buffer, options: WriteFileOptions): Promise<WriteFileResult> {
    const r = await this.run(writeFileArgv(path, options, Buffer.byteLength(data)), options.become, { stdin: data });
    if (r.exitCode !== 0) throw this.ioError('write', path, r.stderrText || `exit code ${r.exitCode}`);
    const previous = keptPrevious(r.stdoutText);
    return previous ? { previousPath: previous } : {};
  }

  /** Writes go to the file a symlink points at, so a linked config (Debian's /etc/postgresql) stays linked. */
  private async resolveLink(path: string): Promise<string> {
    try {
      const st = await fs.lstat(path);
      return st.isSymbolicLink() ? await fs.realpath(path) : path;
    } catch {
      return path;
    }
  }

  /**
   * Keeps the file about to be replaced as `<path>.pgplay-prev`. A hard link keeps its exact bytes, mode
   * and owner at no cost; it becomes the only name of the old inode once the rename lands. The link is
   * made under a temp name and renamed, so an older previous file is replaced atomically too.
   */
  private async keepPrevious(target: string): Promise<string> {
    const previous = target + PREVIOUS_SUFFIX;
    const tmp = join(dirname(target), `.${basename(previous)}.pgplay-tmp-${randomBytes(6).toString('hex')}`);
    try {
      try {
        await fs.link(target, tmp);
      } catch {
        // Filesystems without hard links: copy, then restore owner and mode.
        const st = await fs.stat(target);
        await fs.copyFile(target, tmp, fsConstants.COPYFILE_EXCL);
        await fs.chown(tmp, st.uid, st.gid);
        await fs.chmod(tmp, st.mode & 0o7777);
      }
      await fs.rename(tmp, previous);
    } catch (e) {
      await fs.unlink(tmp).catch(() => {});
      throw e;
    }
    return previous;
  }

  private cannotStart(argv: string[], cwd: string | undefined, code: string | undefined, detail: string): PgplayError {
    const reason =
      code === 'ENOENT'
        ? cwd
          ? `working directory ${cwd} does not exist`
          : 'command not found'
        : code === 'EACCES'
          ? 'permission denied'
          : detail;
    return new PgplayError({
      code: 'TRANSPORT',
      message: `cannot run ${argv[0]}: ${reason}`,
      host: this.hostName,
      hint: code === 'ENOENT' && !cwd ? `check that ${argv[0]} is installed and on PATH on ${this.hostName}` : undefined,
    });
  }

  private ioError(op: 'read' | 'write' | 'stat', path: string, cause: unknown): PgplayError {
    const reason = typeof cause === 'string' ? cause : describeFsError(cause);
    return new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot ${op} ${path}: ${reason}`,
      host: this.hostName,
      cause: typeof cause === 'string' ? undefined : cause,
    });
  }
}


/**
 * The child's stdin and stdout as one duplex. Unlike Duplex.from, destroying it on purpose (the caller
 * is done) or the child exiting is a normal end, not an error nobody listens for.
 */
class ChildStream extends Duplex {
  constructor(
    private readonly stdin: Writable,
    private readonly stdout: Readable,
    private readonly stop: () => void,
  ) {
    super();
    stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) stdout.pause();
    });
    stdout.once('end', () => this.push(null));
    stdout.once('error', (e) => this.destroy(e));
    // EPIPE once the child is gone: the reading side reports the end.
    stdin.on('error', () => {});
  }

  override _read(): void {
    this.stdout.resume();
  }

  // Writing to a command that has exited (EPIPE) is not an error of the stream: the bytes had nowhere to
  // go, and what the command printed and its end tell how it went. An error here would destroy the
  // stream and lose output not read yet (say, the "done" a receiving tar prints after its archive).
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.stdin.destroyed || !this.stdin.writable) return callback();
    this.stdin.write(chunk, () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.stdin.destroyed || !this.stdin.writable) return callback();
    this.stdin.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stop();
    this.stdin.destroy();
    this.stdout.destroy();
    callback(error);
  }
}

/** Children of every transport, so a process exit never leaves a detached group behind. */
const liveGroups = new Set<Child>();
/** The command helpers of every transport, for the same reason. */
const allHelpers = new Set<ExecServers>();
process.once('exit', () => {
  for (const child of liveGroups) killGroup(child, 'SIGKILL');
  for (const servers of allHelpers) servers.killAll();
});

/** Helpers that start as another user through runuser, from `currentUser` (this process's). */
/**
 * Helpers each local helper can fork (exec-server.ts: fork_helper): a run's hosts on this machine read
 * their facts at once, each prestarting a helper of the PGDATA owner's, and all but the first are forked
 * from it rather than started through runuser (a PAM session, a perl and a fork of this process each).
 */
const FORKABLE_HELPERS = 3;

function localHelpers(currentUser: string, maxPerUser: number | (() => number)): ExecServers {
  const servers = new ExecServers((user, helper) => spawnedHelper(becomeArgv(helper, user, currentUser, 'runuser'), FORKABLE_HELPERS), maxPerUser, true);
  allHelpers.add(servers);
  return servers;
}

function killGroup(child: Child, signal: NodeJS.Signals): void {
  const pid = child.process.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      child.process.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** The rename is durable only once the directory entry is on disk. Some filesystems cannot fsync a directory; the write itself has succeeded by then. */
async function fsyncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    await handle.sync();
  } catch {
    // best effort, see above
  } finally {
    await handle?.close().catch(() => {});
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return fs.stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function describeFsError(e: unknown): string {
  if (e instanceof PgplayError) return e.message;
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ENOENT: 'the directory does not exist',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EISDIR: 'it is a directory',
    ENOTDIR: 'a parent is not a directory',
    EIO: 'I/O error',
  };
  if (err?.code && known[err.code]) return `${known[err.code]} (${err.code})`;
  return err?.message ?? String(e);
}

interface PasswdEntry {
  uid: number;
  gid: number;
}

/**
 * uid/gid ⇄ name lookups through getent, so NSS sources (LDAP, sssd) count. Every local transport runs
 * on this machine, so they share one cache for the process: a stat of a config file should not cost
 * two processes, nor should each local host of a lab ask again. Only answers are kept: a user or
 * group not found yet may be created by a later step (a package install), so a miss is asked again.
 */
class IdCache {
  /** getent answers by database and key, in flight or found; a miss is dropped. */
  private readonly answers = new Map<string, Promise<string[] | undefined>>();

  private lookup(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
    const id = `${database}:${key}`;
    let answer = this.answers.get(id);
    if (!answer) {
      answer = getent(database, key);
      this.answers.set(id, answer);
      void answer.then((fields) => {
        if (!fields) this.answers.delete(id);
      });
    }
    return answer;
  }

  async userName(uid: number): Promise<string> {
    return (await this.lookup('passwd', String(uid)))?.[0] ?? String(uid);
  }

  async groupName(gid: number): Promise<string> {
    return (await this.lookup('group', String(gid)))?.[0] ?? String(gid);
  }

  async user(name: string, hostName: string): Promise<PasswdEntry> {
    const fields = await this.lookup('passwd', name);
    if (!fields) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `user ${name} does not exist`, host: hostName, expected: 'an existing OS user' });
    }
    return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }

  async gid(name: string, hostName: string): Promise<number> {
    const fields = await this.lookup('group', name);
    if (!fields) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `group ${name} does not exist`, host: hostName, expected: 'an existing OS group' });
    }
    return Number(fields[2]);
  }
}

/** The one cache of this machine's users and groups (see IdCache). */
const machineIds = new IdCache();

/**
 * A user or group entry as getent would give it. Where nsswitch.conf consults the local files first
 * (Debian's `passwd: files systemd`), an entry found in /etc/passwd or /etc/group is exactly getent's
 * answer, and costs no fork of this process; only what the files do not hold is asked of getent (LDAP,
 * sssd, systemd's dynamic users).
 */
async function getent(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  if (await filesFirst(database)) {
    const local = await fromFile(database, key);
    if (local) return local;
  }
  const r = await startChild('getent', [database, key]).done;
  const out = r.stdout.toString('utf8');
  if (r.exitCode === 0 && out) return out.split('\n')[0]!.split(':');
  if (!r.startError) return undefined;
  // No getent (minimal images): the local files are all there is.
  return fromFile(database, key);
}

async function fromFile(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  return entryIn(await fs.readFile(database === 'passwd' ? '/etc/passwd' : '/etc/group', 'utf8').catch(() => ''), key);
}

/** The first line of a passwd or group file whose name (or, for a number, whose id) is `key`, as its fields. */
export function entryIn(fileText: string, key: string): string[] | undefined {
  if (!key) return undefined;
  const numeric = /^\d+$/.test(key);
  for (const line of fileText.split('\n')) {
    // As glibc's files backend: a comment is no entry.
    if (line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 3) continue;
    if (numeric ? fields[2] === key : fields[0] === key) return fields;
  }
  return undefined;
}

/** nsswitch.conf, read once: whether a database's first source is `files`. */
let nsswitch: Promise<string> | undefined;

async function filesFirst(database: 'passwd' | 'group'): Promise<boolean> {
  return firstSourceIsFiles(await (nsswitch ??= fs.readFile('/etc/nsswitch.conf', 'utf8').catch(() => '')), database);
}

/** The database's line (`passwd: files systemd`, comments aside): is `files` asked first? */
export function firstSourceIsFiles(nsswitchConf: string, database: string): boolean {
  for (const raw of nsswitchConf.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^([a-z_]+)\s*:\s*(.*)$/.exec(line);
    if (m && m[1] === database) return m[2]!.split(/\s+/)[0] === 'files';
  }
  return false;
}
