/**
 * How the CLI learns it must stop (src/cli/interrupt.ts): signals, a hangup (unless nohup asked it to be
 * ignored) and an output nobody reads any more. The real process's side is test/e2e/hangup.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Interrupts, SIGHUP_IGNORED_VAR, type InterruptedProcess, type OutputStream } from '../../src/cli/interrupt.js';

/** A stream whose writes fail, once `close()` was called, as node's do on a pipe whose reader is gone. */
class FakeStream extends EventEmitter implements OutputStream {
  destroyed = false;
  errored: Error | null = null;
  readonly written: string[] = [];
  private gone = false;
  write(chunk: string): boolean {
    if (!this.gone) {
      this.written.push(chunk);
      return true;
    }
    // Node sets `errored` as the synchronous write fails, and destroys the stream and emits 'error' a tick later.
    const e = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    this.errored ??= e;
    process.nextTick(() => {
      this.destroyed = true;
      this.emit('error', e);
    });
    return false;
  }
  close(): void {
    this.gone = true;
  }
}

function fakeProcess(env: NodeJS.ProcessEnv = {}) {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const proc = {
    on: (event: string, listener: () => void) => signals.on(event, listener),
    stdout: new FakeStream(),
    stderr: new FakeStream(),
    env,
    exit: (code: number) => void exits.push(code),
  };
  return { proc: proc as InterruptedProcess & typeof proc, signals, exits };
}

describe('Interrupts', () => {
  it('a hangup stops the run as SIGTERM does, with a notice', () => {
    const { proc, signals } = fakeProcess();
    const signal = new Interrupts(proc).signal();
    signals.emit('SIGHUP');
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('hung up (SIGHUP)');
    expect(proc.stderr.written.join('')).toContain('hung up (SIGHUP): finishing running steps');
  });

  it('a hangup whose terminal is gone (its notice fails too) is recorded as the hangup, not as the error output', () => {
    const { proc, signals } = fakeProcess();
    const signal = new Interrupts(proc).signal();
    proc.stderr.close();
    signals.emit('SIGHUP');
    expect((signal.reason as Error).message).toBe('hung up (SIGHUP)');
  });

  it('a hangup is ignored when pgplay was started with it ignored, and the variable is not passed on', () => {
    const env = { [SIGHUP_IGNORED_VAR]: '1', OTHER: 'x' };
    const { proc, signals } = fakeProcess(env);
    const signal = new Interrupts(proc).signal();
    // Node ignores a signal that has a listener: there must be one, and it must not stop the run.
    expect(signals.listenerCount('SIGHUP')).toBe(1);
    signals.emit('SIGHUP');
    expect(signal.aborted).toBe(false);
    expect(env).toEqual({ OTHER: 'x' });
  });

  it('a write that fails stops the run as it returns, before the next step could start', () => {
    const { proc } = fakeProcess();
    const signal = new Interrupts(proc).signal();
    proc.stdout.write('first\n');
    proc.stdout.close();
    proc.stdout.write('second\n');
    // Synchronously: node emits 'error' only a tick later.
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('the output was closed (EPIPE)');
    expect(proc.stderr.written.join('')).toContain('pgplay: the output was closed (EPIPE): finishing running steps');
  });

  it("node's later 'error' event is handled (no crash) and stops nothing twice", async () => {
    const { proc } = fakeProcess();
    const interrupts = new Interrupts(proc);
    proc.stdout.close();
    proc.stdout.write('lost\n');
    await new Promise((resolve) => process.nextTick(resolve));
    expect(proc.stdout.listenerCount('error')).toBe(1);
    // A command that asks for its signal after the output was closed is stopped at once.
    const signal = interrupts.signal();
    expect(signal.aborted).toBe(true);
    expect(proc.stderr.written.filter((w) => w.includes('output was closed'))).toHaveLength(1);
  });

  it('an error output that is gone stops the run too, without writing its notice into it again and again', () => {
    const { proc } = fakeProcess();
    const signal = new Interrupts(proc).signal();
    proc.stderr.close();
    proc.stderr.write('a warning\n');
    expect(signal.aborted).toBe(true);
    expect((signal.reason as Error).message).toBe('the error output was closed (EPIPE)');
  });

  it('Ctrl-C twice exits at once; SIGTERM stops without a notice', () => {
    const { proc, signals, exits } = fakeProcess();
    const signal = new Interrupts(proc).signal();
    signals.emit('SIGTERM');
    expect((signal.reason as Error).message).toBe('terminated by SIGTERM');
    expect(proc.stderr.written).toEqual([]);
    signals.emit('SIGINT');
    expect(exits).toEqual([]);
    signals.emit('SIGINT');
    expect(exits).toEqual([130]);
  });
});
