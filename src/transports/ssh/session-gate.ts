/**
 * Bounds the session channels open at once on one connection. sshd refuses sessions beyond its
 * MaxSessions (10 by default) with "open failed"; instead of failing a step, the transport waits for
 * a free slot and tries again. The limit starts at the OpenSSH default and shrinks to what the
 * server allowed when it refuses earlier. sshd also refuses briefly while it is still tearing down
 * sessions the client already saw closed, so after a run of successful opens the limit grows back
 * one step at a time (a wrong guess costs one refused open).
 */
const REGROW_AFTER = 16;

export class SessionGate {
  private active = 0;
  private limit: number;
  private successesSinceRefusal = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly max = 10) {
    this.limit = max;
  }

  get open(): number {
    return this.active;
  }

  get capacity(): number {
    return this.limit;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function once a slot is free. Release exactly once. */
  async acquire(): Promise<() => void> {
    // A woken waiter is handed its slot by wake(), so `active` is only counted here when not waiting.
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.wake();
    };
  }

  /** The server accepted a session. */
  opened(): void {
    if (this.limit >= this.max) return;
    if (++this.successesSinceRefusal >= REGROW_AFTER) {
      this.successesSinceRefusal = 0;
      this.limit++;
      this.wake();
    }
  }

  /**
   * The server refused a session while `openAtRefusal` others were open (the refused one already
   * released). Returns true when waiting for a slot may help, false when nothing else is open and
   * the refusal is final.
   */
  refused(openAtRefusal: number): boolean {
    this.successesSinceRefusal = 0;
    if (openAtRefusal <= 0) return false;
    this.limit = Math.max(1, Math.min(this.limit, openAtRefusal));
    return true;
  }

  private wake(): void {
    while (this.active < this.limit && this.waiters.length > 0) {
      this.active++;
      this.waiters.shift()!();
    }
  }
}
