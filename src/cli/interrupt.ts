import { EXIT, PgplayError } from '../core/errors.js';

/**
 * How the CLI learns that it must stop, and what it does then.
 *
 * - Ctrl-C once (SIGINT), SIGTERM, a hangup (SIGHUP: the terminal or the SSH session went away) and an
 *   output nobody reads any more (a write to stdout or stderr failed: EPIPE once `| tee` or `| head` is
 *   gone, EIO on a terminal that hung up) all end a run the same way: no new step or host starts, the
 *   running steps finish within the grace period, cleanup steps run, the journal records the run as
 *   interrupted, the locks are released, exit 130. Left to node, a hangup or a failed write ends the
 *   process on the spot, in the middle of a step, with its locks left behind.
 * - Ctrl-C twice: exit 130 at once.
 * - A hangup is ignored when pgplay was started with it ignored (nohup): node resets every signal to its
 *   default as it starts, so bin/pgplay, which sees the disposition pgplay was started with, says so in
 *   PGPLAY_SIGHUP_IGNORED.
 */

/** An output stream as this sees it: node's stdout and stderr (a fake in the unit tests). */
export interface OutputStream extends NodeJS.EventEmitter {
  write(chunk: string, ...rest: unknown[]): boolean;
  readonly errored?: Error | null;
}

/** What of node's process this uses (a fake in the unit tests). */
export interface InterruptedProcess {
  on(event: 'SIGINT' | 'SIGTERM' | 'SIGHUP', listener: () => void): unknown;
  stdout: OutputStream;
  stderr: OutputStream;
  env: NodeJS.ProcessEnv;
  exit(code: number): void;
}

/** The variable bin/pgplay sets when pgplay was started with hangups ignored. */
export const SIGHUP_IGNORED_VAR = 'PGPLAY_SIGHUP_IGNORED';

/**
 * Set up once per process, before anything is written: from then on a write to stdout or stderr that
 * fails is no crash (every command's output may be cut short by its reader: `pgplay schema playbook |
 * head`), and whether hangups were ignored at the start is known (the variable is not passed on: the
 * commands pgplay starts get their signals as node gives them, at their defaults).
 */
export class Interrupts {
  private closed?: string;
  private readonly onClosed: Array<(why: string) => void> = [];
  private readonly hangupIgnored: boolean;

  constructor(private readonly proc: InterruptedProcess = process as unknown as InterruptedProcess) {
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = proc[name];
      const failed = (e: NodeJS.ErrnoException | null | undefined) => this.failed(name, e);
      stream.on('error', failed);
      // A write to a pipe or a file is synchronous on Linux: one that failed has set the stream's `errored`
      // by the time write() returns, but 'error' is emitted a tick later, after a run may have started its
      // next step. The failure is heard as the write returns.
      const write = stream.write;
      stream.write = function (this: OutputStream, ...args: Parameters<OutputStream['write']>) {
        const accepted = write.apply(this, args);
        if (stream.errored) failed(stream.errored);
        return accepted;
      };
    }
    this.hangupIgnored = proc.env[SIGHUP_IGNORED_VAR] === '1';
    delete proc.env[SIGHUP_IGNORED_VAR];
  }

  private failed(stream: 'stdout' | 'stderr', e: NodeJS.ErrnoException | null | undefined): void {
    if (this.closed !== undefined) return;
    this.closed = `the ${stream === 'stdout' ? 'output' : 'error output'} was closed (${e?.code ?? e?.message ?? 'destroyed'})`;
    for (const listener of this.onClosed) listener(this.closed);
  }

  /** The signal a long command (a run) stops on. Once per process. */
  signal(): AbortSignal {
    const { proc } = this;
    const controller = new AbortController();
    const stop = (message: string, notice?: string) => {
      if (controller.signal.aborted) return;
      // The reason first: stderr may be gone too (a terminal that hung up), and its failed write would
      // otherwise stop the run in the name of the error output.
      controller.abort(new PgplayError({ code: 'INTERRUPTED', message }));
      if (notice) proc.stderr.write(notice);
    };
    let presses = 0;
    proc.on('SIGINT', () => {
      presses++;
      if (presses === 1) stop('interrupted by SIGINT', '\ninterrupted: finishing running steps (Ctrl-C again to exit now)\n');
      else proc.exit(EXIT.INTERRUPTED);
    });
    proc.on('SIGTERM', () => stop('terminated by SIGTERM'));
    // A listener that does nothing is how node ignores a signal.
    proc.on('SIGHUP', this.hangupIgnored ? () => undefined : () => stop('hung up (SIGHUP)', '\nhung up (SIGHUP): finishing running steps\n'));
    const closed = (why: string) => stop(why, `\npgplay: ${why}: finishing running steps\n`);
    if (this.closed !== undefined) closed(this.closed);
    else this.onClosed.push(closed);
    return controller.signal;
  }
}
