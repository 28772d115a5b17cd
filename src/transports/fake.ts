import { Duplex, PassThrough } from 'node:stream';
import { PgplayError } from '../core/errors.js';
import type { ExecOptions, ExecResult, FileStat, Transport, WriteFileOptions, WriteFileResult } from './types.js';
import { PREVIOUS_SUFFIX } from './types.js';

/**
 * An in-memory transport for engine unit tests: files live in a Map, commands are answered by a
 * handler, and every call is recorded so tests can assert ordering, parallelism and that check mode
 * never wrote anything. It never replaces the real transports in end-to-end tests.
 */
export interface FakeCall {
  host: string;
  kind: 'exec' | 'readFile' | 'writeFile' | 'stat';
  argv?: string[];
  path?: string;
  become?: string;
  start: number;
  end?: number;
}

export type FakeExecHandler = (
  argv: string[],
  options: ExecOptions,
  transport: FakeTransport,
) => Partial<ExecResult> | Promise<Partial<ExecResult>>;

export interface FakeFile {
  data: Buffer;
  mode: number;
  owner: string;
  group: string;
}

export class FakeTransport implements Transport {
  readonly kind = 'fake' as const;
  readonly files = new Map<string, FakeFile>();
  readonly directories = new Set<string>(['/']);
  readonly calls: FakeCall[];
  connected = false;
  closed = false;
  /** Set to make the next operations fail as if the host were unreachable (nothing answers: connect refused). */
  unreachable = false;
  /** Set to make the next operations fail with this error instead (e.g. an authentication failure, which is not unreachable). */
  failure?: PgplayError;

  constructor(
    readonly hostName: string,
    private readonly handler: FakeExecHandler = () => ({ exitCode: 0 }),
    options: { calls?: FakeCall[]; latencyMs?: number } = {},
  ) {
    this.calls = options.calls ?? [];
    this.latencyMs = options.latencyMs ?? 0;
  }

  private readonly latencyMs: number;

  async connect(): Promise<void> {
    this.assertReachable();
    this.connected = true;
  }

  async exec(argv: string[], options: ExecOptions = {}): Promise<ExecResult> {
    const call = this.record({ kind: 'exec', argv, become: options.become });
    await this.delay();
    const partial = await this.handler(argv, options, this);
    call.end = Date.now();
    return { argv, exitCode: 0, stdout: '', stderr: '', durationMs: call.end - call.start, timedOut: false, ...partial };
  }

  async readFile(path: string): Promise<Buffer | null> {
    this.record({ kind: 'readFile', path }).end = Date.now();
    return this.files.get(path)?.data ?? null;
  }

  async writeFile(path: string, data: string | Buffer, options: WriteFileOptions = {}): Promise<WriteFileResult> {
    this.record({ kind: 'writeFile', path, become: options.become }).end = Date.now();
    const previous = this.files.get(path);
    let previousPath: string | undefined;
    if (previous && options.keepPrevious) {
      previousPath = path + PREVIOUS_SUFFIX;
      this.files.set(previousPath, { ...previous });
    }
    this.files.set(path, {
      data: Buffer.from(data),
      mode: options.mode ?? previous?.mode ?? 0o644,
      owner: options.owner ?? previous?.owner ?? 'root',
      group: options.group ?? previous?.group ?? 'root',
    });
    return { previousPath };
  }

  async stat(path: string): Promise<FileStat> {
    this.record({ kind: 'stat', path }).end = Date.now();
    const file = this.files.get(path);
    if (file) return { exists: true, type: 'file', mode: file.mode, owner: file.owner, group: file.group, size: file.data.length };
    if (this.directories.has(path)) return { exists: true, type: 'directory', mode: 0o755, owner: 'root', group: 'root' };
    return { exists: false };
  }

  async openStream(): Promise<Duplex> {
    return new PassThrough();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private record(call: Omit<FakeCall, 'host' | 'start'>): FakeCall {
    this.assertReachable();
    const full: FakeCall = { host: this.hostName, start: Date.now(), ...call };
    this.calls.push(full);
    return full;
  }

  private assertReachable(): void {
    if (this.failure) throw this.failure;
    if (this.unreachable) {
      throw new PgplayError({ code: 'TRANSPORT', message: `host ${this.hostName} is unreachable`, host: this.hostName, unreachable: true });
    }
  }

  private delay(): Promise<void> {
    return this.latencyMs ? new Promise((r) => setTimeout(r, this.latencyMs)) : Promise.resolve();
  }
}
