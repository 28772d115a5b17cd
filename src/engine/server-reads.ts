/**
 * Which hosts' facts describe their server as it is after every change the run has made: the one-primary
 * invariant's read after a step (guards.ts) need not read those again.
 *
 * One counter orders two kinds of moments: a read of a host's server begins (a facts read with the
 * 'server' area), and an apply ends, on any host, however it ended. A host's facts are current when the
 * read they hold began after the latest apply ended, that read answered in full and no later-begun read
 * finished before it (an older read that finishes last leaves older facts), and no apply is running
 * anywhere (one abandoned by its step's timeout may still change a server). The facts an apply read
 * itself after its change (Outcome.facts, as a start reads the server it started) are current when no
 * other apply ended while it ran: they were read after its own change, and nothing changed since.
 *
 * What this saves: after a step that started or promoted a server, the engine read that server twice in
 * a row, once as the step's refresh of what it declared changed and once for the invariant (~70 ms on
 * the lab, every start of a standby build and every promotion).
 */
export class ServerReads {
  private clock = 0;
  private lastChange = 0;
  /** Applies ended so far, and those begun but not ended. */
  private ended = 0;
  private running = 0;
  /** Per host, the mark of the read its facts hold when that read vouches for them (absent: none does). */
  private readonly current = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** A read of a host's server begins: its mark, for `read` once it has answered. */
  begin(): number {
    return ++this.clock;
  }

  /**
   * The read that began at `mark` has answered and its facts are now the host's; `complete`: it
   * answered in full (reachable, no error). A failed read, or one that began before the read the facts
   * held, leaves the host with no read that vouches for it.
   */
  read(hostName: string, mark: number, complete: boolean): void {
    if (complete && mark > (this.current.get(hostName) ?? 0)) this.current.set(hostName, mark);
    else this.current.delete(hostName);
  }

  /** An apply begins: returns what `applyEnded` and `adopted` need (did another apply end during it?). */
  applying(): ApplyTicket {
    this.running++;
    return { endedBefore: this.ended, ended: false };
  }

  /**
   * The changes of the apply of `ticket` are over (however it ended): no earlier read vouches for what any
   * server is now. Once per apply: an action that says its change has ended (ActionContext.changeEnded: the
   * server it started is up, or the one it stopped gone, and what follows only reads it) ends it then, and
   * the engine's call when the apply returns is nothing more.
   */
  applyEnded(ticket: ApplyTicket): void {
    if (ticket.ended) return;
    ticket.ended = true;
    this.running--;
    this.ended++;
    this.lastChange = ++this.clock;
    for (const listener of this.listeners) listener();
  }

  /**
   * The facts the apply of `ticket` read after its change, now the host's (`complete` as for `read`):
   * current unless another apply ended while it ran (its own end is the only one since it began).
   */
  adopted(hostName: string, ticket: ApplyTicket, complete: boolean): void {
    this.read(hostName, this.begin(), complete && this.ended === ticket.endedBefore + 1);
  }

  /** Whether the host's facts hold a read that began after the last apply anywhere ended, with none running. */
  readSinceLastChange(hostName: string): boolean {
    return this.running === 0 && (this.current.get(hostName) ?? 0) > this.lastChange;
  }

  /** How many applies have ended so far (compare with a later count: did any end in between?). */
  get endedCount(): number {
    return this.ended;
  }

  /** Whether an apply is running now (one abandoned by its step's timeout may still be). */
  get applyRunning(): boolean {
    return this.running > 0;
  }

  /** Calls `listener` after every later change; returns what stops that. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** An apply as ServerReads counts it: how many had ended when it began, and whether its changes are over. */
export interface ApplyTicket {
  readonly endedBefore: number;
  ended: boolean;
}
