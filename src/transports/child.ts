import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';

/**
 * A child process of the local transport, on node:child_process alone. execa did this job before; it
 * is ~600 modules and ~100 ms of loading, all of it on the way to a local run's first command, for
 * features the transport does not use (pipelines, verbose logs, IPC).
 */
export interface ChildOutcome {
  /** Undefined when the child was stopped by a signal or could not be started. */
  exitCode?: number;
  signal?: NodeJS.Signals;
  /** Set when the command could not be started (ENOENT for a missing program or working directory, EACCES). */
  startError?: NodeJS.ErrnoException;
  stdout: Buffer;
  stderr: Buffer;
}

export interface Child {
  readonly process: ChildProcess;
  /** Resolves (never rejects) once the child has exited and its output streams are closed. */
  readonly done: Promise<ChildOutcome>;
}

export interface ChildOptions {
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string | Buffer;
  /**
   * `buffer`: stdout and stderr are collected into the outcome. `stream`: stdin and stdout are pipes
   * the caller reads and writes, stderr is discarded.
   */
  io?: 'buffer' | 'stream';
}

/** Starts a child in its own process group (so the whole tree it starts can be stopped), as execa's `detached`. */
export function startChild(file: string, args: string[], options: ChildOptions = {}): Child {
  const streaming = options.io === 'stream';
  const child = spawn(file, args, {
    cwd: options.cwd,
    env: options.env ? { ...process.env, ...options.env } : process.env,
    stdio: [streaming || options.input !== undefined ? 'pipe' : 'ignore', 'pipe', streaming ? 'ignore' : 'pipe'],
    detached: true,
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  if (!streaming) {
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  }
  const done = new Promise<ChildOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: Omit<ChildOutcome, 'stdout' | 'stderr'>) => {
      if (settled) return;
      settled = true;
      resolve({ ...outcome, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
    };
    // A child that could not start has no pid; errors of a running child (a failed kill) change nothing.
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (child.pid === undefined) settle({ startError: e });
    });
    child.once('close', (code, signal) => settle(code === null ? { signal: signal ?? undefined } : { exitCode: code }));
  });
  if (options.input !== undefined && child.stdin) writeInput(child.stdin, options.input);
  return { process: child, done };
}

/** A command that exits without reading all of its input (EPIPE) is no error of ours: its exit status says how it went. */
function writeInput(stdin: Writable, input: string | Buffer): void {
  stdin.on('error', () => {});
  stdin.end(input);
}

/** Text output as execa gave it by default: UTF-8 without the one final newline. */
export function outputText(buffer: Buffer): string {
  const text = buffer.toString('utf8');
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}
