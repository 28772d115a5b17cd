import type { Duplex } from 'node:stream';
import type { ReadAheadAnswer } from './read-ahead.js';
import type {
  ExecOptions,
  ExecResult,
  FileStat,
  ReadOptions,
  Transport,
  WriteFileOptions,
  WriteFileResult,
} from './types.js';

/**
 * What one run has read ahead on its hosts, and when it stops being true. Entries are keyed by host,
 * user (a path reads differently as root and as postgres) and path.
 *
 * The rule that keeps answers true: an entry lives until anything may have changed what it describes.
 * - Any command, write or stream on a host drops that host's entries at once (`changedOn`).
 * - Between steps, if anything changed on any host, every host's entries go (`stepFinished`): two
 *   inventory hosts can be one machine, and a step sees every change that earlier steps made.
 * - A step whose action may change a host without going through its transport (SQL, a tool that
 *   talks to a server) drops everything before it starts (`invalidate`).
 * A fetch that was under way while entries were dropped is not stored (generations).
 */
export class ReadAheadCache {
  private generation = 0;
  private readonly hostGeneration = new Map<string, number>();
  private readonly entries = new Map<string, Map<string, ReadAheadAnswer>>();
  private changedDuringStep = false;
  /** Whether the last finished step changed anything: the next read-ahead then covers only one step. */
  lastStepChanged = false;

  /** A token to hand back to `store`, taken before fetching. */
  begin(host: string): string {
    return `${this.generation}:${this.hostGeneration.get(host) ?? 0}`;
  }

  store(host: string, become: string | undefined, token: string, answers: Map<string, ReadAheadAnswer>): void {
    if (token !== this.begin(host)) return;
    let forHost = this.entries.get(host);
    if (!forHost) this.entries.set(host, (forHost = new Map()));
    for (const [path, answer] of answers) forHost.set(key(become, path), answer);
  }

  get(host: string, become: string | undefined, path: string): ReadAheadAnswer | undefined {
    return this.entries.get(host)?.get(key(become, path));
  }

  /** Something ran on the host that may have changed it. */
  changedOn(host: string): void {
    this.forget(host);
    this.changedDuringStep = true;
  }

  /** The host's answers may be out of date (time passed: a retry, a confirmation prompt); read again. */
  forget(host: string): void {
    this.entries.delete(host);
    this.hostGeneration.set(host, (this.hostGeneration.get(host) ?? 0) + 1);
  }

  invalidate(): void {
    this.entries.clear();
    this.generation++;
  }

  stepFinished(): void {
    this.lastStepChanged = this.changedDuringStep;
    if (this.changedDuringStep) this.invalidate();
    this.changedDuringStep = false;
  }
}

function key(become: string | undefined, path: string): string {
  return `${become ?? ''}\0${path}`;
}

/**
 * A transport that answers stat and readFile from the run's ReadAheadCache when it can, and reports every
 * other call to the cache as a possible change. Everything else is the wrapped transport's.
 */
/** The transport under the read-ahead cache: for commands outside any step, which must not count as a step's change. */
export function withoutReadAhead(transport: Transport): Transport {
  return transport instanceof ReadAheadTransport ? transport.inner : transport;
}

export class ReadAheadTransport implements Transport {
  constructor(
    readonly inner: Transport,
    private readonly cache: ReadAheadCache,
  ) {}

  get hostName(): string {
    return this.inner.hostName;
  }

  get kind(): Transport['kind'] {
    return this.inner.kind;
  }

  connect(): Promise<void> {
    return this.inner.connect();
  }

  preconnect(): void {
    this.inner.preconnect?.();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async stat(path: string, options: ReadOptions = {}): Promise<FileStat> {
    const hit = this.cache.get(this.hostName, options.become, path);
    return hit ? { ...hit.stat } : this.inner.stat(path, options);
  }

  async readFile(path: string, options: ReadOptions = {}): Promise<Buffer | null> {
    const hit = this.cache.get(this.hostName, options.become, path);
    if (hit?.content !== undefined) return hit.content === null ? null : Buffer.from(hit.content);
    return this.inner.readFile(path, options);
  }

  exec(argv: string[], options?: ExecOptions): Promise<ExecResult> {
    this.cache.changedOn(this.hostName);
    return this.inner.exec(argv, options);
  }

  writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<WriteFileResult> {
    this.cache.changedOn(this.hostName);
    return this.inner.writeFile(path, data, options);
  }

  openStream(argv: string[], options?: { become?: string }): Promise<Duplex> {
    this.cache.changedOn(this.hostName);
    return this.inner.openStream(argv, options);
  }
}
