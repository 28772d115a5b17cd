/**
 * The run's PostgreSQL connections: one per host, database and port (the role and OS user are the
 * host's), opened when a step first asks for it and reused by every later SQL step and wait probe, so
 * a run starts one socket bridge per host and user instead of one per query step (55-105 ms each).
 *
 * A caller leases a connection and ends it as it would a connection of its own (`client.end()`), which
 * gives it back. Reuse is never blind:
 * - a connection the server or the bridge closed (its 'end' or 'error') is never handed out again;
 * - one handed out again first runs DISCARD ALL: it proves the session still answers and resets what
 *   the previous lease left (settings, temporary tables, prepared statements, advisory locks); a
 *   connection left inside a transaction (DISCARD ALL refuses to run there) or that does not answer is
 *   closed, which rolls the transaction back as ending a connection of its own did, and a new one opened;
 * - two leases at once (a step querying a host while holding a session there) get two connections;
 * - a connection whose query timed out (query_timeout: the server may still be running it) is closed
 *   when given back;
 * - `drop(host)` closes a host's connections: the engine does before and after a step that changes the
 *   host's server or data directory (a restart would break them; a smart shutdown would wait for them).
 *   It sends each one's Terminate and does not wait for the server to close its side (its backend's
 *   exit, ~15 ms on the lab): a fast or immediate stop ends the session anyway, a smart one waits for the
 *   session the Terminate ends.
 * `closeAll()` at the end of the run ends every connection, and with it every bridge process, and waits
 * for those drop() left closing. A close waits for the server at most closeTimeoutMs (5 s), then cuts the
 * connection's stream (which ends its bridge): a backend that never answers (frozen storage, a paused
 * container) must not keep the run from ending.
 */
import type { Client } from 'pg';

export interface Pooled {
  client: Client;
  hostName: string;
  key: string;
  /** The server or the bridge ended it: never handed out again. */
  broken: boolean;
  leased: boolean;
  /** Opened after a step's change to its server, for that step (its token): the drop() after the step spares it. */
  openedAfter?: object;
}

/**
 * Whether a leased connection was dropped (the host's server is being changed: drop()) or broke since it
 * was handed out: a reader holding it must not go on asking it (facts-read.ts).
 */
export function leaseBroken(client: Client): boolean {
  return LEASES.get(client)?.broken ?? false;
}

const LEASES = new WeakMap<Client, Pooled>();

/** pg's error for a query whose query_timeout passed. */
const QUERY_TIMEOUT = 'Query read timeout';

/** How long the check before reuse may take before the connection counts as gone. */
const RESET_TIMEOUT_MS = 10_000;

/** How long a close waits for the server to answer the Terminate before the stream is cut. */
const CLOSE_TIMEOUT_MS = 5_000;

export class ConnectionPool {
  private readonly pooled = new Set<Pooled>();
  /** Connections drop() ended whose server has not closed its side yet. */
  private readonly closing = new Set<Promise<void>>();
  /** Connections opened so far, for tests and the trace. */
  opened = 0;

  constructor(private readonly closeTimeoutMs = CLOSE_TIMEOUT_MS) {}

  /**
   * A connection to `hostName` for `key` (database and port): an idle one that still answers, else a new
   * one from `open`. `timeoutMs`: the caller's own limit, which the check of an idle one keeps to as well.
   */
  async lease(hostName: string, key: string, open: () => Promise<Client>, timeoutMs?: number, openedAfter?: object): Promise<Client> {
    const idle = await this.leaseIdle(hostName, key, timeoutMs);
    if (idle) return idle;
    const client = await open();
    this.opened++;
    const p: Pooled = { client, hostName, key, broken: false, leased: true, openedAfter };
    const broken = () => {
      p.broken = true;
    };
    client.on('end', broken);
    client.on('error', broken);
    this.pooled.add(p);
    return leaseOf(p, this);
  }

  /**
   * An idle connection to `hostName` for `key` that still answers (checked as `lease` checks it), never a
   * new one: undefined when there is none. For a reader that only gains from a connection already open
   * (postgres/facts-read.ts). `tries`: how many idle ones to check at most (each check may take timeoutMs).
   */
  async leaseIdle(hostName: string, key: string, timeoutMs?: number, tries = Infinity): Promise<Client | undefined> {
    for (const p of [...this.pooled]) {
      if (p.hostName !== hostName || p.key !== key || p.leased) continue;
      if (tries-- <= 0) break;
      p.leased = true;
      if (!p.broken && (await reset(p, Math.min(RESET_TIMEOUT_MS, timeoutMs ?? RESET_TIMEOUT_MS)))) return leaseOf(p, this);
      await this.discard(p);
    }
    return undefined;
  }

  /** Gives a leased connection back (its `end()`), or closes it when it broke meanwhile. */
  async release(p: Pooled): Promise<void> {
    if (!p.leased || !this.pooled.has(p)) return;
    p.leased = false;
    if (p.broken) await this.discard(p);
  }

  /**
   * Closes a host's idle connections and marks its leased ones to close when given back. `spare`: a step's
   * token; the connections opened for it after its change (lease's openedAfter) are kept, as any other
   * connection of the pool from then on.
   */
  async drop(hostName: string, spare?: object): Promise<void> {
    const mine = [...this.pooled].filter((p) => p.hostName === hostName && !(spare && p.openedAfter === spare));
    for (const p of this.pooled) if (spare && p.openedAfter === spare) p.openedAfter = undefined;
    for (const p of mine) p.broken = true;
    // discard() has sent the Terminate by the time it returns its promise (pg's end() writes it at once);
    // it never rejects.
    for (const p of mine.filter((p) => !p.leased)) {
      const closed = this.discard(p).finally(() => this.closing.delete(closed));
      this.closing.add(closed);
    }
  }

  /** Ends every connection (and its bridge process): the run is over. */
  async closeAll(): Promise<void> {
    await Promise.all([...[...this.pooled].map((p) => this.discard(p)), ...this.closing]);
  }

  /** Connections open now (idle or leased). */
  get size(): number {
    return this.pooled.size;
  }

  private async discard(p: Pooled): Promise<void> {
    this.pooled.delete(p);
    p.broken = true;
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        cutStream(p.client);
        resolve();
      }, this.closeTimeoutMs);
    });
    try {
      await Promise.race([p.client.end(), cut]);
    } catch {
      // A connection that fails to close is gone all the same: out of the pool, its stream cut at the latest.
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Ends pg's stream under the client (for a bridge: its process), as pg itself does for a hung query. */
function cutStream(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy?(): void } } }).connection?.stream?.destroy?.();
}

async function reset(p: Pooled, timeoutMs: number): Promise<boolean> {
  try {
    await p.client.query({ text: 'DISCARD ALL', query_timeout: timeoutMs } as never);
    return !p.broken;
  } catch {
    return false;
  }
}

/**
 * The client as its caller sees it: the pooled one, except that `end()` gives it back. Methods run on
 * the pooled client itself (bound), so its state is the pooled client's.
 */
function leaseOf(p: Pooled, pool: ConnectionPool): Client {
  let ended = false;
  const end = async () => {
    if (ended) return;
    ended = true;
    await pool.release(p);
  };
  // A query that timed out on the client may still run on the server, and the connection would queue
  // the next lease's DISCARD ALL behind it: it is never handed out again.
  const query = (...args: unknown[]) => {
    const result = Reflect.apply(p.client.query, p.client, args) as unknown;
    if (result instanceof Promise) {
      result.catch((e: unknown) => {
        if (e instanceof Error && e.message === QUERY_TIMEOUT) p.broken = true;
      });
    }
    return result;
  };
  const lease = new Proxy(p.client, {
    get(target, prop) {
      if (prop === 'end') return end;
      if (prop === 'query') return query;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  LEASES.set(lease, p);
  return lease;
}
