import type { Duplex } from 'node:stream';
import type { PathLocation, ReadAheadAnswer } from './read-ahead.js';
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
 * - Except a change whose extent is known (`knownChange`, `changedAt`): a regular file written whole, a directory
 *   created. It drops, on every host (one machine may be several inventory hosts), what can be the
 *   same place or depends on it, by the places' locations (read-ahead.ts), before and after the change;
 *   an answer without a location, or a link, is always dropped. A change whose own path has no
 *   location is of unknown extent after all.
 * A fetch that was under way while entries were dropped is not stored (generations), and of one under
 * way during a change of known extent, what that change may have made untrue is not stored.
 */
export class ReadAheadCache {
  private generation = 0;
  private readonly hostGeneration = new Map<string, number>();
  private readonly entries = new Map<string, Map<string, ReadAheadAnswer>>();
  private changedDuringStep = false;
  /**
   * How many steps in a row, up to the last finished one, changed something of unknown extent (after
   * such a change everything is read again). One such step in a run of known changes (two inventory
   * hosts on one machine creating a parent they share) is followed by a read-ahead of the whole window
   * again; after two in a row the steps keep changing what they read, and only one step is read.
   */
  unknownChangesInARow = 0;

  get lastStepChanged(): boolean {
    return this.unknownChangesInARow > 0;
  }
  /** The changes of known extent so far, in order (a fetch's token holds how many there were when it began). */
  private readonly knownChanges: Array<{ where: PathLocation; kind: 'file' | 'directory' }> = [];

  /** A token to hand back to `store`, taken before fetching. */
  begin(host: string): string {
    return `${this.generation}:${this.hostGeneration.get(host) ?? 0}:${this.knownChanges.length}`;
  }

  store(host: string, become: string | undefined, token: string, answers: Map<string, ReadAheadAnswer>): void {
    const [generations, changesBefore] = [token.slice(0, token.lastIndexOf(':')), Number(token.slice(token.lastIndexOf(':') + 1))];
    if (generations !== `${this.generation}:${this.hostGeneration.get(host) ?? 0}`) return;
    // Changes made while this was read: what they may have changed may have been read before or after them.
    const meanwhile = this.knownChanges.slice(changesBefore);
    let forHost = this.entries.get(host);
    if (!forHost) this.entries.set(host, (forHost = new Map()));
    for (const [path, answer] of answers) {
      if (meanwhile.some((c) => mayChange(answer, c.where, c.kind))) continue;
      forHost.set(key(become, path), answer);
    }
  }

  get(host: string, become: string | undefined, path: string): ReadAheadAnswer | undefined {
    return this.entries.get(host)?.get(key(become, path));
  }

  /**
   * Where the change this run is about to make on `host` as `become` is, when its extent is known:
   * `kind` file, the regular file `path` written whole (a temp file beside it renamed over it, the
   * previous one kept beside it); `kind` directory, the directory `path` created with its missing
   * parents. Undefined when the extent cannot be told: then it may have changed anything.
   */
  knownChange(host: string, become: string | undefined, path: string, kind: 'file' | 'directory'): PathLocation | undefined {
    const target = this.get(host, become, path);
    const where = target?.where;
    if (!target || !where) return undefined;
    const { stat } = target;
    // A file is written only where nothing or a regular file is, in a directory that exists; a directory
    // of known extent is a new one (changing an existing one's mode or owner changes what is below it).
    if (kind === 'file' && (where.rest.length !== 1 || (stat.exists && stat.type !== 'file'))) return undefined;
    if (kind === 'directory' && stat.exists) return undefined;
    return where;
  }

  /** Drops, on every host, what a change at `changed` (see knownChange) can make untrue; before and after it. */
  changedAt(changed: PathLocation, kind: 'file' | 'directory'): void {
    for (const forHost of this.entries.values()) {
      for (const [k, answer] of forHost) if (mayChange(answer, changed, kind)) forHost.delete(k);
    }
    this.knownChanges.push({ where: changed, kind });
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
    this.unknownChangesInARow = this.changedDuringStep ? this.unknownChangesInARow + 1 : 0;
    if (this.changedDuringStep) this.invalidate();
    this.changedDuringStep = false;
  }
}

/**
 * Whether creating `changed` (a file or a new directory with its missing parents) can change an answer.
 * The places it can change: the directory it is created in (an entry more: `self` is the anchor), and
 * for a file its own name in that directory with the names the write makes beside it (`name.pgplay-prev`,
 * `.name.pgplay-tmp-*`), what is below that name; for a directory every place on or below its first
 * missing component (they were all missing: the anchor is the deepest that existed).
 */
function mayChange(answer: ReadAheadAnswer, changed: PathLocation, kind: 'file' | 'directory'): boolean {
  const where = answer.where;
  if (!where || answer.stat.type === 'symlink') return true;
  if (where.self === changed.anchor) return true;
  if (where.anchor !== changed.anchor) return false;
  const first = where.rest[0]!;
  const name = changed.rest[0]!;
  return kind === 'directory' ? first === name : first.startsWith(name) || first.startsWith(`.${name}`);
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

  preconnect(): void | Promise<void> {
    return this.inner.preconnect?.();
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
    const directory = options?.createsDirectory;
    if (directory !== undefined) return this.changing(directory, 'directory', options?.become, () => this.inner.exec(argv, options));
    this.cache.changedOn(this.hostName);
    return this.inner.exec(argv, options);
  }

  async writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<WriteFileResult> {
    return this.changing(path, 'file', options?.become, () => this.inner.writeFile(path, data, options));
  }

  /**
   * A change of `path` alone: what was read ahead elsewhere stays true. Dropped again once it is done,
   * so nothing read while it was under way (on another inventory host of the same machine) outlives it.
   */
  private async changing<T>(path: string, kind: 'file' | 'directory', become: string | undefined, change: () => Promise<T>): Promise<T> {
    const where = this.cache.knownChange(this.hostName, become, path, kind);
    if (!where) {
      this.cache.changedOn(this.hostName);
      return change();
    }
    this.cache.changedAt(where, kind);
    try {
      return await change();
    } finally {
      this.cache.changedAt(where, kind);
    }
  }

  openStream(argv: string[], options?: { become?: string }): Promise<Duplex> {
    this.cache.changedOn(this.hostName);
    return this.inner.openStream(argv, options);
  }

  async openUnixSocket(socketPath: string, options: { become?: string }): Promise<Duplex | undefined> {
    this.cache.changedOn(this.hostName);
    return this.inner.openUnixSocket?.(socketPath, options);
  }
}
