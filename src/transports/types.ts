import type { Duplex } from 'node:stream';

/**
 * How pgplay reaches a host. Local (execa) and SSH (ssh2) implement the same interface so that every
 * action works on a remote host exactly as it does locally; the fake one serves engine unit tests.
 *
 * Conventions every implementation keeps:
 * - Commands are argv arrays. A shell is only used where the caller asks for one (argv[0] = /bin/sh).
 * - `exec` resolves with the exit code for any command that ran; it rejects (PgplayError TRANSPORT or
 *   TIMEOUT) only when the command could not be run or the connection broke.
 * - `become` runs as another OS user (runuser when root, else sudo -n).
 * - File writes are atomic: temp file in the same directory, fsync, rename; the previous content is
 *   kept beside it as `<path>.pgplay-prev` when asked.
 */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string | Buffer;
  /** Kill the command after this many milliseconds; the result has timedOut = true. */
  timeoutMs?: number;
  become?: string;
  signal?: AbortSignal;
  /**
   * The command does nothing but create this directory (absolute, normalized) and its missing parents,
   * and set the new directory's mode and owner: what was read ahead elsewhere stays true. Transports run
   * the command as any other.
   */
  createsDirectory?: string;
}

export interface ExecResult {
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export type FileType = 'file' | 'directory' | 'symlink' | 'other';

export interface FileStat {
  exists: boolean;
  type?: FileType;
  /** Permission bits, e.g. 0o600. */
  mode?: number;
  owner?: string;
  group?: string;
  size?: number;
  linkTarget?: string;
}

export interface WriteFileOptions {
  mode?: number;
  owner?: string;
  group?: string;
  /** Keep the file being replaced as `<path>.pgplay-prev`. */
  keepPrevious?: boolean;
  become?: string;
}

export interface WriteFileResult {
  previousPath?: string;
}

export interface ReadOptions {
  become?: string;
}

export interface Transport {
  /** Inventory host name this transport reaches. */
  readonly hostName: string;
  readonly kind: 'local' | 'ssh' | 'fake';
  /** Opens the connection (no-op for local). Safe to call more than once. */
  connect(): Promise<void>;
  /**
   * Starts opening the connection without waiting for it, so that its handshake overlaps with work that
   * comes before the host's first command. Never throws: a failure is what the next connect() reports.
   * May return a promise that settles (never rejects) once the opening is under way, never later: a
   * transport whose module is still loading settles when it has started (app/early-connect.ts waits for
   * that before the run loads the rest of its modules, which would otherwise come first).
   */
  preconnect?(): void | Promise<void>;
  exec(argv: string[], options?: ExecOptions): Promise<ExecResult>;
  /**
   * Whether a command run as `become` stops when its ExecOptions.signal aborts (or its timeout passes). Not
   * where this process may not signal it: a local pgplay that is not root runs another user's commands
   * through sudo, which makes itself root. Absent: it does.
   */
  canStop?(become?: string): boolean;
  /** Resolves null when the file does not exist. */
  readFile(path: string, options?: ReadOptions): Promise<Buffer | null>;
  writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<WriteFileResult>;
  stat(path: string, options?: ReadOptions): Promise<FileStat>;
  /**
   * Starts a long-lived command and returns its stdin/stdout as one duplex stream (used to reach a
   * PostgreSQL unix socket as the become user, so peer authentication works locally and over SSH).
   */
  openStream(argv: string[], options?: { become?: string }): Promise<Duplex>;
  /**
   * Optional: a byte stream to a unix socket opened as the become user without starting a bridge
   * process (the local transport's helper of that user becomes the bridge), beginning with the bridge's
   * "OK" or "ERR <reason>" line; undefined when it cannot, and the caller runs a bridge with openStream.
   */
  openUnixSocket?(socketPath: string, options: { become?: string }): Promise<Duplex | undefined>;
  close(): Promise<void>;
}

export const PREVIOUS_SUFFIX = '.pgplay-prev';
