/**
 * Which hosts' facts describe their server as it is after every change the run has made: the one-primary
 * invariant's read after a step (guards.ts) need not read those again.
 *
 * One counter orders two kinds of moments: a read of a host's server begins (a facts read with the
 * 'server' area that reached the host), and an apply ends, on any host, whatever it did or however it
 * ended. A host's server was read after the last change when its latest read began after the latest
 * apply ended. The facts an apply read itself after its change (Outcome.facts, as a start reads the
 * server it started) count from the moment they are taken over, after that apply's end: the action
 * read them after its change and changed nothing since.
 *
 * What this saves: after a step that started or promoted a server, the engine read that server twice in
 * a row, once as the step's refresh of what it declared changed and once for the invariant (~70 ms on
 * the lab, every start of a standby build and every promotion).
 */
export class ServerReads {
  private clock = 0;
  private lastChange = 0;
  private readonly lastRead = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** A read of a host's server begins: its mark, for `read` once it has answered. */
  begin(): number {
    return ++this.clock;
  }

  /** The read that began at `mark` answered from the host. */
  read(hostName: string, mark: number): void {
    if (mark > (this.lastRead.get(hostName) ?? 0)) this.lastRead.set(hostName, mark);
  }

  /** An apply ended, on any host: no earlier read vouches for what its server is now. */
  changed(): void {
    this.lastChange = ++this.clock;
    for (const listener of this.listeners) listener();
  }

  /** Calls `listener` after every later change; returns what stops that. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether the host's server was read after the last apply anywhere ended. */
  readSinceLastChange(hostName: string): boolean {
    return (this.lastRead.get(hostName) ?? 0) > this.lastChange;
  }
}
