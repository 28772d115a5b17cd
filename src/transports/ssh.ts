import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Duplex } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { PgplayError, isPgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { displayArgv, pidAnnouncement, remoteCommand } from './quote.js';
import type { ResolveSecret } from './ssh/auth.js';
import { describeEndpoint, endpointOf, openConnection, type Endpoint } from './ssh/connect.js';
import {
  MISSING_STATUS,
  keptPrevious,
  parseStat,
  readFileArgv,
  statArgv,
  writeFileArgv,
  writeFileFields,
} from './file-commands.js';
import { SessionGate } from './ssh/session-gate.js';
import { ExecServers, type HelperLink, type ServedCommand } from './exec-server.js';
import { usesRunuser } from './become.js';
import {
  type ExecOptions,
  type ExecResult,
  type FileStat,
  type ReadOptions,
  type Transport,
  type WriteFileOptions,
  type WriteFileResult,
} from './types.js';

export interface SshTransportOptions {
  resolveSecret: ResolveSecret;
  /** ProxyJump: the host to connect through (already resolved to a Host). */
  jump?: Host;
  /** Called with each line appended to known_hosts under accept-new, so the run can report it. */
  onHostKeyAdded?: (line: string) => void;
  /** Session channels open at once before waiting; sshd's MaxSessions (default 10). */
  maxSessions?: number;
}

/** File scripts run in the C locale, so tool messages in errors read the same on every host. */
const C_LOCALE = { LC_ALL: 'C' };

/** After a timeout or interrupt: TERM, then KILL after this long, then drop the channel. */
const KILL_GRACE_MS = 1_500;

/**
 * Command helpers per user over one connection (exec-server.ts): each holds a session slot for the run.
 * Two per user serve a host's usual concurrency (facts beside a read-ahead, a step beside a lock).
 */
const HELPERS_PER_USER = 2;
/** Session slots a helper never takes: streams (pg_basebackup, socket bridges) and direct commands keep them. */
const SLOTS_KEPT_FOR_SESSIONS = 4;
/**
 * A user's first commands take sessions of their own; the next one starts the user's first helper. A run
 * with nothing to change reads a host in two or three commands (lock, facts, read-ahead), which a
 * helper's start (a session and perl) would not pay back; a run that changes things sends dozens.
 */
const DIRECT_COMMANDS_BEFORE_HELPER = 3;

type LostReason = { kind: 'lost'; detail?: string } | { kind: 'closed' };

interface RawResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
  timedOut: boolean;
}

/**
 * The SSH transport: one ssh2 connection per host for the whole run, opened on first use and shared
 * by every call (each command is its own session channel), closed by close(). Remote command lines
 * are built only by quote.ts; file operations are fixed scripts run as the become user.
 */
export class SshTransport implements Transport {
  readonly kind = 'ssh' as const;
  readonly hostName: string;
  private readonly endpoint: Endpoint;
  private readonly gate: SessionGate;
  private client?: Client;
  private via?: Client;
  private connecting?: Promise<Client>;
  /** The attempt preconnect() started, until its outcome is claimed (see connection()). */
  private early?: Promise<Client>;
  private earlyClaimed = false;
  private lastConnectionError?: string;
  /** The client close() is ending, so its in-flight calls say "closed" rather than "lost". */
  private closingClient?: Client;
  private readonly inflight = new Set<(reason: LostReason) => void>();
  private opened = 0;
  /** Marks this transport's pid announcements so command output cannot forge one. */
  private readonly pidTag = randomBytes(6).toString('hex');
  /**
   * Long-lived command helpers, one session each (exec-server.ts): a command through one costs a fork in
   * the helper instead of a session of its own (sshd's session set-up, the login shell, env).
   */
  private readonly helpers = new ExecServers((user, helper) => this.launchHelper(user, helper), HELPERS_PER_USER);
  /** Commands run so far per user that a helper could have run (DIRECT_COMMANDS_BEFORE_HELPER). */
  private readonly helperCandidates = new Map<string, number>();

  constructor(
    private readonly host: Host,
    private readonly options: SshTransportOptions,
  ) {
    this.hostName = host.name;
    this.endpoint = endpointOf(host);
    this.gate = new SessionGate(options.maxSessions ?? 10);
  }

  /** SSH connections opened so far (1 for a whole run unless one broke and was reopened). */
  get connectionsOpened(): number {
    return this.opened;
  }

  async connect(): Promise<void> {
    await this.connection();
  }

  /**
   * Starts the handshake now (a run starts every host's while it takes its locks). It is the attempt the
   * host's first connect() would make, only made earlier: its failure is reported by that call.
   */
  preconnect(): void {
    if (this.client || this.connecting || this.early) return;
    const attempt = this.connection();
    this.early = attempt;
    attempt.then(
      () => {
        // Connected: from now on the client itself answers (and a lost one is reopened, never this attempt).
        if (this.early === attempt) this.early = undefined;
      },
      () => undefined,
    );
  }

  private connection(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    const early = this.early;
    if (early) {
      // A failed pre-connect answers the callers of the moment it is first claimed (the facts and the
      // read-ahead beside them ask together), as one attempt they shared; a call after that tries again.
      if (!this.earlyClaimed) {
        this.earlyClaimed = true;
        early.catch(() =>
          setImmediate(() => {
            if (this.early === early) this.early = undefined;
          }),
        );
      }
      return early;
    }
    if (!this.connecting) {
      this.connecting = openConnection(this.host, this.options).then(
        ({ client, via }) => {
          this.opened++;
          this.client = client;
          this.via = via;
          this.lastConnectionError = undefined;
          this.watch(client);
          return client;
        },
        (e: unknown) => {
          this.connecting = undefined;
          throw e;
        },
      );
    }
    return this.connecting;
  }

  private watch(client: Client): void {
    let gone = false;
    const lost = (): void => {
      if (gone) return;
      gone = true;
      if (this.client === client) {
        this.client = undefined;
        this.via = undefined;
        this.connecting = undefined;
      }
      const reason: LostReason = this.closingClient === client ? { kind: 'closed' } : { kind: 'lost', detail: this.lastConnectionError };
      for (const notify of [...this.inflight]) notify(reason);
    };
    client.on('error', (err: Error) => {
      this.lastConnectionError = err.message;
    });
    client.once('end', lost);
    client.once('close', lost);
  }

  async close(): Promise<void> {
    // The helpers exit at the end of their input; the connection's end closes their sessions anyway.
    const helpersClosed = this.helpers.close();
    const pending = this.connecting;
    this.connecting = undefined;
    this.early = undefined;
    const client = this.client ?? (pending ? await pending.catch(() => undefined) : undefined);
    const via = this.via;
    this.client = undefined;
    this.via = undefined;
    if (!client) {
      await helpersClosed;
      return;
    }
    this.closingClient = client;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.destroy();
        resolve();
      }, 5_000);
      client.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      client.end();
    });
    via?.end();
    await helpersClosed;
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const raw = await this.run(argv, options);
    const stderr = raw.stderr.toString('utf8');
    if (!options.become || options.become === this.endpoint.user) this.assertStarted(argv, raw.exitCode, stderr);
    // Output as the local transport (execa) returns it: one final newline stripped.
    return {
      argv,
      exitCode: raw.exitCode,
      stdout: stripFinalNewline(raw.stdout.toString('utf8')),
      stderr: stripFinalNewline(stderr),
      durationMs: raw.durationMs,
      timedOut: raw.timedOut,
    };
  }

  /**
   * env(1) reports a program it could not start with 127/126 and its own message; the local
   * transport rejects those as "cannot run", so this one does too (become wrappers report their
   * own exit status locally as well, and are left alone).
   */
  private assertStarted(argv: string[], exitCode: number, stderr: string): void {
    if (exitCode !== 127 && exitCode !== 126) return;
    const program = escapeRegExp(argv[0]!);
    // env(1)'s words on the direct path, the command helper's (exec-server.ts) through a helper.
    const notFound = new RegExp(`^(?:env: .${program}.|pgplay: failed to execute ${program}): No such file or directory$`, 'm');
    const denied = new RegExp(`^(?:env: .${program}.|pgplay: failed to execute ${program}): Permission denied$`, 'm');
    const reason = exitCode === 127 && notFound.test(stderr) ? 'command not found' : exitCode === 126 && denied.test(stderr) ? 'permission denied' : undefined;
    if (!reason) return;
    throw new PgplayError({
      code: 'TRANSPORT',
      message: `cannot run ${argv[0]}: ${reason}`,
      host: this.hostName,
      hint: reason === 'command not found' ? `check that ${argv[0]} is installed and on PATH on ${this.hostName}` : undefined,
    });
  }

  async readFile(path: string, options: ReadOptions = {}): Promise<Buffer | null> {
    const result = await this.run(readFileArgv(path), { become: options.become, env: C_LOCALE });
    if (result.exitCode === MISSING_STATUS) return null;
    if (result.exitCode !== 0) throw this.fileError('read', path, options.become, result);
    return result.stdout;
  }

  async stat(path: string, options: ReadOptions = {}): Promise<FileStat> {
    const result = await this.run(statArgv(path), { become: options.become, env: C_LOCALE });
    if (result.exitCode === MISSING_STATUS) return { exists: false };
    if (result.exitCode !== 0) throw this.fileError('stat', path, options.become, result);
    return parseStat(result.stdout.toString('utf8'));
  }

  async writeFile(path: string, data: string | Buffer, options: WriteFileOptions = {}): Promise<WriteFileResult> {
    // Through a helper, the helper writes the file itself; else the script does, in a session of its own.
    const native = (user: string) => this.helpers.write(user, writeFileFields(path, options), data);
    const result = await this.run(writeFileArgv(path, options, Buffer.byteLength(data)), { become: options.become, stdin: data, env: C_LOCALE }, native);
    if (result.exitCode !== 0) throw this.fileError('write', path, options.become, result);
    const previousPath = keptPrevious(result.stdout.toString('utf8'));
    return previousPath ? { previousPath } : {};
  }

  async openStream(argv: string[], options: { become?: string } = {}): Promise<Duplex> {
    const { channel, release, exited } = await this.openChannel(this.command(argv, { become: options.become }), argv);
    let stderr = '';
    let exitCode: number | undefined;
    let endedByConsumer = false;
    channel.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString('utf8')).slice(-4096);
    });
    channel.on('exit', (code: number | null, signal?: string) => {
      exitCode = code ?? signalExitCode(signal);
      // ssh2 ends our side itself once the server closes, so look before that happens.
      endedByConsumer = channel.writableEnded;
    });
    const failStream = (err: PgplayError): void => {
      // ssh2's Channel.destroy() takes no error, so the error is emitted here, and only to a
      // consumer that listens: an unhandled 'error' would crash the run.
      if (channel.listenerCount('error') > 0) channel.emit('error', err);
      channel.destroy();
    };
    const onLost = (reason: LostReason): void => failStream(this.lostError(argv, reason));
    this.inflight.add(onLost);
    channel.once('close', () => {
      this.inflight.delete(onLost);
      release();
      exitCode ??= exited();
      // A command that fails on its own is reported; one the consumer already ended is not.
      if (exitCode !== undefined && exitCode !== 0 && !endedByConsumer) {
        const err = new PgplayError({
          code: 'STEP_FAILED',
          host: this.hostName,
          message: `${displayArgv(argv)} on ${describeEndpoint(this.endpoint)} exited with ${exitCode}${stderr ? `: ${stderr.trim()}` : ''}`,
        });
        if (channel.listenerCount('error') > 0) channel.emit('error', err);
      }
    });
    return channel;
  }

  private command(argv: string[], options: Pick<ExecOptions, 'cwd' | 'env' | 'become'>, pidTag?: string): string {
    return remoteCommand(argv, {
      cwd: options.cwd,
      env: options.env,
      become: options.become,
      currentUser: this.endpoint.user,
      becomeMethod: this.host.connection.becomeMethod,
      pidTag,
    });
  }

  /**
   * Runs `argv` in a helper (exec-server.ts) or a session of its own. `native`: what a helper does instead
   * of running it, when it can (writeFile's write_file).
   */
  private async run(argv: string[], options: ExecOptions, native?: (user: string) => Promise<ServedCommand | undefined>): Promise<RawResult> {
    const started = Date.now();
    const signal = options.signal;
    if (signal?.aborted) throw this.interruptedError(argv);
    const served = await this.viaHelper(argv, options, native);
    if (served) return this.settleServed(served, argv, options, started);
    // A command that may have to be stopped announces its process group (see remoteCommand).
    const stoppable = (options.timeoutMs !== undefined && options.timeoutMs > 0) || signal !== undefined;
    const announcement = stoppable ? pidAnnouncement(this.pidTag) : undefined;
    const command = this.command(argv, options, stoppable ? this.pidTag : undefined);
    const { channel, release, exited } = await this.openChannel(command, argv);

    return new Promise<RawResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let remotePid: number | undefined;
      let exitCode: number | undefined;
      let timedOut = false;
      let interrupted = false;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let killTimer: NodeJS.Timeout | undefined;

      const finish = (settle: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(killTimer);
        signal?.removeEventListener('abort', onAbort);
        this.inflight.delete(onLost);
        release();
        settle();
      };
      const onLost = (reason: LostReason): void => finish(() => reject(this.lostError(argv, reason)));
      let stopping = false;
      const stop = (): void => {
        if (stopping) return;
        stopping = true;
        // sshd refuses signal requests for root logins (no privilege separation after auth), so
        // the process group is signalled from a second session; the request is sent as well for
        // servers that honour it. runuser and sudo pass TERM on to the command.
        const signalRemote = (sig: 'TERM' | 'KILL'): void => {
          if (this.endpoint.user !== 'root') sendSignal(channel, sig);
          if (remotePid !== undefined) void this.killGroup(remotePid, sig, options.become);
        };
        signalRemote('TERM');
        killTimer = setTimeout(() => {
          signalRemote('KILL');
          killTimer = setTimeout(() => {
            // The command outlived KILL (or never announced its pid): close our side and settle
            // so the step never hangs past its timeout.
            channel.close();
            killTimer = setTimeout(onClose, KILL_GRACE_MS);
          }, KILL_GRACE_MS);
        }, KILL_GRACE_MS);
      };
      const onAbort = (): void => {
        interrupted = true;
        stop();
      };

      this.inflight.add(onLost);
      // A channel error (a write after the server closed it) shows up as the close handled below;
      // without a listener it would crash the run.
      channel.on('error', () => undefined);
      channel.on('data', (d: Buffer) => stdout.push(d));
      channel.stderr.on('data', (d: Buffer) => {
        stderr.push(d);
        if (announcement && remotePid === undefined) {
          const m = announcement.exec(Buffer.concat(stderr).toString('latin1'));
          if (m) {
            remotePid = Number(m[1]);
            // Stopped before the login shell got this far (slow rc files): stop it now.
            if (stopping) void this.killGroup(remotePid, 'TERM', options.become);
          }
        }
      });
      channel.on('exit', (code: number | null, signalName?: string) => {
        exitCode = code ?? signalExitCode(signalName);
      });
      const collectedStderr = (): Buffer => {
        const all = Buffer.concat(stderr);
        if (!announcement) return all;
        // Strip the announcement; everything else on stderr is the command's own.
        const m = announcement.exec(all.toString('latin1'));
        if (!m) return all;
        return Buffer.concat([all.subarray(0, m.index), all.subarray(m.index + m[0].length)]);
      };
      const onClose = (): void => {
        exitCode ??= exited();
        if (interrupted) {
          finish(() => reject(this.interruptedError(argv)));
          return;
        }
        if (exitCode === undefined && !timedOut) {
          // No exit status: the connection is going away underneath; let its 'end' arrive first so
          // the error says so.
          setImmediate(() =>
            finish(() =>
              reject(
                this.client
                  ? new PgplayError({
                      code: 'TRANSPORT',
                      host: this.hostName,
                      message: `${describeEndpoint(this.endpoint)} closed the session without an exit status while running: ${displayArgv(argv)}`,
                    })
                  : this.lostError(argv, { kind: 'lost', detail: this.lastConnectionError }),
              ),
            ),
          );
          return;
        }
        finish(() =>
          resolve({
            exitCode: exitCode ?? 124,
            stdout: Buffer.concat(stdout),
            stderr: collectedStderr(),
            durationMs: Date.now() - started,
            timedOut,
          }),
        );
      };
      channel.once('close', onClose);

      if (options.timeoutMs !== undefined && options.timeoutMs > 0) {
        timer = setTimeout(() => {
          timedOut = true;
          stop();
        }, options.timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      // Aborted while the session was being opened: the listener came too late to hear it.
      if (signal?.aborted) onAbort();
      // Always send EOF: a remote command waiting on stdin must not hang the step.
      if (options.stdin !== undefined) channel.end(options.stdin);
      else channel.end();
    });
  }

  /**
   * The user whose helper can run this command exactly as its own session would, or undefined: the
   * login user's helper runs in the login's home with the login's environment, as a session does; another
   * user's runs in / as that user through runuser, as remoteCommand's wrapper does. Commands that ask for
   * another directory, and sudo (whose log and policy see every command), take a session of their own.
   */
  private helperUser(options: ExecOptions): string | undefined {
    const login = this.endpoint.user;
    const user = options.become ?? login;
    if (user === login) return options.cwd === undefined ? login : undefined;
    if (options.cwd !== undefined && options.cwd !== '/') return undefined;
    return usesRunuser(this.host.connection.becomeMethod ?? 'auto', login === 'root') ? user : undefined;
  }

  private async viaHelper(
    argv: string[],
    options: ExecOptions,
    native?: (user: string) => Promise<ServedCommand | undefined>,
  ): Promise<{ command: ServedCommand; user: string } | undefined> {
    const user = this.helperUser(options);
    if (user === undefined || argv.length === 0) return undefined;
    const seen = this.helperCandidates.get(user) ?? 0;
    this.helperCandidates.set(user, seen + 1);
    if (seen < DIRECT_COMMANDS_BEFORE_HELPER) return undefined;
    // Checked as the direct path checks them: the same errors, before anything is sent.
    this.command(argv, options);
    const command = native ? await native(user) : await this.helpers.run(user, argv, options.env ?? {}, options.stdin);
    return command && { command, user };
  }

  /** A helper's session: `cd /` for another user, as remoteCommand runs that user's commands. */
  private async launchHelper(user: string, helper: string[]): Promise<HelperLink | undefined> {
    // Never the slots streams and direct sessions need: without one free beyond them, no helper now.
    if (this.gate.capacity - this.gate.open <= SLOTS_KEPT_FOR_SESSIONS) return undefined;
    const become = user === this.endpoint.user ? undefined : user;
    // A helper never waits for a slot nor retries a refused session: its command then runs directly.
    const opened = await this.openChannel(this.command(helper, { become }), ['perl', '-e', '<command helper>'], { waitForSlot: false }).catch(() => undefined);
    if (!opened) return undefined;
    const { channel, release } = opened;
    channel.stderr.resume();
    channel.on('error', () => undefined);
    const gone = new Promise<void>((resolve) => {
      const onLost = (): void => {
        channel.destroy();
        resolve();
      };
      this.inflight.add(onLost);
      channel.once('close', () => {
        this.inflight.delete(onLost);
        release();
        resolve();
      });
    });
    return {
      stdin: channel,
      stdout: channel,
      gone,
      // Its commands run in process groups of their own: the transport stops them by pid (killGroup).
      kill: () => channel.close(),
      ref: () => undefined,
      unref: () => undefined,
    };
  }

  /**
   * A command a helper runs, settled as the direct path settles its own: a timeout or an interrupt stops
   * its process group (TERM, then KILL), and a command that outlives KILL ends its helper, so the step
   * never hangs past its timeout.
   */
  private async settleServed(
    served: { command: ServedCommand; user: string },
    argv: string[],
    options: ExecOptions,
    started: number,
  ): Promise<RawResult> {
    const { command } = served;
    const become = served.user === this.endpoint.user ? undefined : served.user;
    let timedOut = false;
    let interrupted = false;
    let stopping = false;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      void command.pid.then((pid) => {
        if (pid === undefined) return;
        void this.killGroup(pid, 'TERM', become);
        killTimer = setTimeout(() => {
          void this.killGroup(pid, 'KILL', become);
          killTimer = setTimeout(() => command.abandon(), KILL_GRACE_MS);
        }, KILL_GRACE_MS);
      });
    };
    const onAbort = (): void => {
      interrupted = true;
      stop();
    };
    const timer =
      options.timeoutMs !== undefined && options.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            stop();
          }, options.timeoutMs)
        : undefined;
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // Aborted while the helper was being asked: the listener came too late to hear it.
    if (options.signal?.aborted) onAbort();
    try {
      const outcome = await command.done;
      if (interrupted) throw this.interruptedError(argv);
      if (outcome.startError) {
        if (timedOut) return { exitCode: 124, stdout: outcome.stdout, stderr: outcome.stderr, durationMs: Date.now() - started, timedOut };
        // Its session ended under it: the connection going away, or the helper itself.
        if (!this.client) throw this.lostError(argv, { kind: 'lost', detail: this.lastConnectionError });
        throw new PgplayError({
          code: 'TRANSPORT',
          host: this.hostName,
          message: `the command helper's session on ${describeEndpoint(this.endpoint)} ended while running: ${displayArgv(argv)}`,
          hint: 'the command may or may not have completed on the host; check its state before running the step again',
        });
      }
      return {
        exitCode: outcome.exitCode ?? signalExitCode(outcome.signal),
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        durationMs: Date.now() - started,
        timedOut,
      };
    } finally {
      clearTimeout(timer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      // Idle now: if sessions wait for a slot, or the server turned out to allow few, its own is theirs.
      if (this.gate.waiting > 0 || this.gate.capacity <= SLOTS_KEPT_FOR_SESSIONS) this.helpers.stopIdle();
    }
  }

  /** Signals a remote process group from a separate session, as the user that owns it. */
  private async killGroup(pgid: number, sig: 'TERM' | 'KILL', become: string | undefined): Promise<void> {
    try {
      await this.run(['kill', `-${sig}`, '--', `-${pgid}`], { become });
    } catch {
      // Best effort: the group may be gone already, or the connection with it.
    }
  }

  /** Opens a session channel running `command`, waiting for a free slot under MaxSessions. */
  private async openChannel(
    command: string,
    argv: string[],
    { waitForSlot = true }: { waitForSlot?: boolean } = {},
  ): Promise<{ channel: ClientChannel; release: () => void; exited: () => number | undefined }> {
    const client = await this.connection();
    let lonelyRefusals = 0;
    for (;;) {
      if (this.gate.open >= this.gate.capacity) {
        if (!waitForSlot) throw new Error('no session slot free');
        // Idle helpers hold slots a waiting session needs: they give them back rather than keep it waiting.
        this.helpers.stopIdle();
      }
      const release = await this.gate.acquire();
      try {
        let status: { code: number | null; signal?: string } | undefined;
        const channel = await new Promise<ClientChannel>((resolve, reject) => {
          try {
            client.exec(command, (err, ch) => {
              if (err) return reject(err);
              // ssh2 emits 'exit' while it parses: a quick command's status can arrive in the same
              // read as the exec reply, before a caller resuming after `await` listens. Record it here.
              ch.once('exit', (code: number | null, signal?: string) => (status = { code, signal }));
              resolve(ch);
            });
          } catch (e) {
            reject(e);
          }
        });
        this.gate.opened();
        return { channel, release, exited: () => (status ? (status.code ?? signalExitCode(status.signal)) : undefined) };
      } catch (e) {
        const othersOpen = this.gate.open - 1;
        release();
        if (this.client !== client) throw this.lostError(argv, { kind: 'lost', detail: this.lastConnectionError });
        if (isSessionRefusal(e)) {
          // The server allows fewer sessions than thought: idle helpers give theirs back.
          this.helpers.stopIdle();
          if (!waitForSlot) {
            this.gate.refused(othersOpen);
            throw e;
          }
          if (this.gate.refused(othersOpen)) continue;
          // Refused with nothing else open: sshd may still be tearing down the previous session.
          if (++lonelyRefusals <= 5) {
            await new Promise((r) => setTimeout(r, 20 * 2 ** lonelyRefusals));
            continue;
          }
        }
        throw new PgplayError({
          code: 'TRANSPORT',
          host: this.hostName,
          message: `cannot start ${displayArgv(argv)} on ${describeEndpoint(this.endpoint)}: ${(e as Error).message.replace(/^\(SSH\) /, '')}`,
          cause: e,
        });
      }
    }
  }

  private lostError(argv: string[], reason: LostReason): PgplayError {
    const where = describeEndpoint(this.endpoint);
    if (reason.kind === 'closed') {
      return new PgplayError({
        code: 'TRANSPORT',
        host: this.hostName,
        message: `connection to ${where} was closed while running: ${displayArgv(argv)}`,
      });
    }
    return new PgplayError({
      code: 'TRANSPORT',
      host: this.hostName,
      message: `connection to ${where} lost while running: ${displayArgv(argv)}${reason.detail ? ` (${reason.detail})` : ''}`,
      hint: 'the command may or may not have completed on the host; check its state before running the step again',
    });
  }

  private interruptedError(argv: string[]): PgplayError {
    return new PgplayError({
      code: 'INTERRUPTED',
      host: this.hostName,
      message: `interrupted while running on ${describeEndpoint(this.endpoint)}: ${displayArgv(argv)}`,
    });
  }

  private fileError(op: 'read' | 'stat' | 'write', path: string, become: string | undefined, result: RawResult): PgplayError {
    const as = become ?? this.endpoint.user;
    const detail = result.stderr.toString('utf8').trim() || `exit status ${result.exitCode}`;
    return new PgplayError({
      code: 'STEP_FAILED',
      host: this.hostName,
      message: `cannot ${op} ${path} on ${describeEndpoint(this.endpoint)} as ${as}: ${detail}`,
    });
  }
}

function isSessionRefusal(e: unknown): boolean {
  // OpenSSH answers a session beyond MaxSessions with "open failed" (reason 2, connect failed); others use 1 or 4.
  const reason = (e as { reason?: unknown }).reason;
  return !isPgplayError(e) && (reason === 1 || reason === 2 || reason === 4);
}

/**
 * Sends a signal request on a session channel. ssh2's Channel.signal() is a no-op once stdin is
 * at EOF (which exec sends right away), although the protocol allows requests after EOF and
 * sshd honours them; so the request goes through the channel's protocol handle directly.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const ch = channel as unknown as {
    outgoing?: { id: number; state: string };
    _client?: { _protocol?: { signal(id: number, signal: string): void } };
  };
  const state = ch.outgoing?.state;
  if (state !== 'open' && state !== 'eof') return;
  try {
    ch._client?._protocol?.signal(ch.outgoing!.id, name);
  } catch {
    // The connection may be going away; the caller's timers settle the call anyway.
  }
}

/** A process killed by a signal reports 128 + signal number, as a shell would. */
function signalExitCode(signal: string | undefined): number {
  if (!signal) return 255;
  const num = (osConstants.signals as Record<string, number>)[`SIG${signal.replace(/^SIG/, '')}`];
  return num === undefined ? 255 : 128 + num;
}

function stripFinalNewline(text: string): string {
  if (!text.endsWith('\n')) return text;
  return text.slice(0, text.endsWith('\r\n') ? -2 : -1);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
