/**
 * How the CLI's process ends once its command has returned its exit code.
 *
 * Left to itself, node ends a process when nothing is pending any more, and first tears its whole heap
 * down: ~6 ms of every pgplay command on the benchmark machine (bench/README.md, session 31), for memory
 * the kernel takes back at once anyway. process.exit() skips that teardown, but it also cuts short
 * whatever is still pending, and node writes to a pipe asynchronously: a reader that is slow to read
 * gets the first 64 KB of the output and not the rest. So the process ends itself only once what it
 * wrote to stdout and stderr has been handed to the system and nothing else is pending (no handle but
 * stdio's, no timer, no request); otherwise it is left to end on its own, as it always did. The `exit`
 * listeners run either way (the compile cache's, the transports').
 */

/** What of node's process this reads (a fake in the unit tests). */
export interface EndingProcess {
  stdout: NodeJS.WritableStream & { writableLength?: number };
  stderr: NodeJS.WritableStream & { writableLength?: number };
  exitCode?: number | string | undefined;
  exit(code: number): void;
  /** Node's list of what keeps the event loop alive (handles, requests, timers), by kind. */
  getActiveResourcesInfo?: () => string[];
  /** The handle objects among them (node's, undocumented; stdout's and stderr's streams are their own handles). */
  _getActiveHandles?: () => unknown[];
}

export async function endProcess(code: number, proc: EndingProcess = process as unknown as EndingProcess): Promise<void> {
  proc.exitCode = code;
  await Promise.all([flushed(proc.stdout), flushed(proc.stderr)]);
  if (onlyStdioPending(proc)) proc.exit(code);
}

/** Resolves once every write made so far has been handed to the system (or the stream has failed). */
function flushed(stream: EndingProcess['stdout']): Promise<void> {
  if (!stream.writable || !stream.writableLength) return Promise.resolve();
  // A write's callback runs after every write before it has completed (or the stream has failed).
  return new Promise((resolve) => stream.write('', () => resolve()));
}

/**
 * Whether the event loop holds nothing but stdout's and stderr's streams; false when node cannot say. A
 * stdin still being read is pending work (and process.stdin, a getter, is not touched: it would open it).
 */
function onlyStdioPending(proc: EndingProcess): boolean {
  if (typeof proc.getActiveResourcesInfo !== 'function' || typeof proc._getActiveHandles !== 'function') return false;
  const stdio = new Set<unknown>([proc.stdout, proc.stderr]);
  const handles = proc._getActiveHandles();
  if (!handles.every((h) => stdio.has(h))) return false;
  // Timers and requests are listed here and not among the handles: anything beyond stdio's is pending work.
  return proc.getActiveResourcesInfo().length === handles.length;
}
