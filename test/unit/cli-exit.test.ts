/**
 * How the CLI's process ends (src/cli/exit.ts): by process.exit() only once its output is flushed and
 * nothing but stdio is pending; else left to node, which ends it when nothing is pending.
 */
import { describe, expect, it } from 'vitest';
import { endProcess, type EndingProcess } from '../../src/cli/exit.js';

/** A stream whose writes complete when `flush()` is called, recording what happened in `log`. */
function slowStream(name: string, log: string[]) {
  const pending: Array<() => void> = [];
  const stream = {
    writable: true,
    writableLength: 0,
    write(_chunk: string, callback?: () => void) {
      stream.writableLength += 1;
      pending.push(() => {
        stream.writableLength -= 1;
        log.push(`${name} flushed`);
        callback?.();
      });
      return false;
    },
    flush() {
      for (const done of pending.splice(0)) done();
    },
  };
  return stream;
}

function fakeProcess(resources: string[], extraHandles: unknown[] = []) {
  const log: string[] = [];
  const stdout = slowStream('stdout', log);
  const stderr = slowStream('stderr', log);
  const proc = {
    stdout,
    stderr,
    exitCode: undefined as number | string | undefined,
    exit: (code: number) => void log.push(`exit ${code}`),
    getActiveResourcesInfo: () => resources,
    _getActiveHandles: () => [stdout, ...extraHandles],
  };
  return { proc, log, stdout, stderr };
}

const asProcess = (p: unknown) => p as EndingProcess;

describe('the end of the CLI process', () => {
  it('exits with the code once what it wrote has been flushed, when only stdio is pending', async () => {
    const { proc, log, stdout, stderr } = fakeProcess(['PipeWrap']);
    stdout.write('the recap');
    stderr.write('a warning');
    const ending = endProcess(3, asProcess(proc));
    await new Promise((r) => setImmediate(r));
    // Not before the output has left: process.exit() would cut a pipe's pending writes short.
    expect(log).toEqual([]);
    expect(proc.exitCode).toBe(3);
    stdout.flush();
    stderr.flush();
    await ending;
    expect(log).toEqual(['stdout flushed', 'stdout flushed', 'stderr flushed', 'stderr flushed', 'exit 3']);
  });

  it('exits at once when nothing was left to flush, without opening stdin (process.stdin is a getter that opens it)', async () => {
    const { proc, log } = fakeProcess(['PipeWrap']);
    let stdinOpened = false;
    Object.defineProperty(proc, 'stdin', { get: () => ((stdinOpened = true), undefined) });
    await endProcess(0, asProcess(proc));
    expect(log).toEqual(['exit 0']);
    expect(stdinOpened).toBe(false);
  });

  it('leaves the process to end on its own, with the code, while a timer, a request or another handle is pending', async () => {
    for (const [resources, handles] of [
      [['PipeWrap', 'Timeout'], []],
      [['FSReqCallback', 'PipeWrap'], []],
      [['PipeWrap', 'ProcessWrap'], [{ child: true }]],
      // stdin still being read (a pipe): node waits for it, and so does this.
      [['PipeWrap', 'PipeWrap'], [{ stdin: true }]],
    ] as Array<[string[], unknown[]]>) {
      const { proc, log } = fakeProcess(resources, handles);
      await endProcess(4, asProcess(proc));
      expect(log, resources.join(',')).toEqual([]);
      expect(proc.exitCode).toBe(4);
    }
  });

  it('leaves the process to node where node cannot say what is pending', async () => {
    const { proc, log } = fakeProcess(['PipeWrap']);
    const { getActiveResourcesInfo: _, ...older } = proc;
    await endProcess(1, asProcess(older));
    expect(log).toEqual([]);
    expect(older.exitCode).toBe(1);
  });
});
