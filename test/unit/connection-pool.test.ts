import { EventEmitter } from 'node:events';
import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { ConnectionPool } from '../../src/postgres/connection-pool.js';

/**
 * The run's connections (issue 14): one per host and database, reused; never a broken one, never one
 * left inside a transaction, never one across a change of the server; all ended at the run's end.
 * Fake clients here; test/e2e/connections-lab.test.ts counts the real ones and their bridge processes.
 */
class FakeClient extends EventEmitter {
  ended = false;
  inTransaction = false;
  queries: string[] = [];
  /** The query_timeout each query was given. */
  timeouts: Array<number | undefined> = [];
  constructor(readonly id: number) {
    super();
  }
  async query(q: string | { text: string }): Promise<{ rows: unknown[] }> {
    const text = typeof q === 'string' ? q : q.text;
    if (this.ended) throw new Error('Client was closed and is not queryable');
    this.queries.push(text);
    this.timeouts.push(typeof q === 'string' ? undefined : (q as { query_timeout?: number }).query_timeout);
    if (text === 'BEGIN') this.inTransaction = true;
    if (text === 'DISCARD ALL' && this.inTransaction) throw new Error('DISCARD ALL cannot run inside a transaction block');
    // pg's answer once a query's query_timeout passed (the server may still be running it).
    if (text.startsWith('SELECT pg_sleep')) throw new Error('Query read timeout');
    return { rows: [] };
  }
  async end(): Promise<void> {
    this.ended = true;
  }
  /** The server went away (a restart): pg emits 'end'. */
  serverGone(): void {
    this.ended = true;
    this.emit('end');
  }
}

function opener() {
  const clients: FakeClient[] = [];
  const open = async () => {
    const c = new FakeClient(clients.length + 1);
    clients.push(c);
    return c as unknown as Client;
  };
  return { clients, open };
}

describe('ConnectionPool', () => {
  it('a connection whose query timed out is closed when given back, never handed out again (its query may still run)', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    const first = await pool.lease('db1', 'postgres', open);
    await expect(first.query({ text: 'SELECT pg_sleep(30)', query_timeout: 1000 } as never)).rejects.toThrow('Query read timeout');
    await first.end();
    expect(clients[0]!.ended).toBe(true);
    const second = await pool.lease('db1', 'postgres', open);
    expect((await second.query('SELECT 1')).rows).toEqual([]);
    await second.end();
    expect(pool.opened).toBe(2);
    expect(clients[1]!.queries).toEqual(['SELECT 1']);
  });

  it('one connection per host and database for consecutive leases; the caller\'s end() gives it back', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    for (let i = 0; i < 3; i++) {
      const c = await pool.lease('db1', 'postgres', open);
      await c.query('SELECT 1');
      await c.end();
    }
    const other = await pool.lease('db2', 'postgres', open);
    await other.end();
    const otherDb = await pool.lease('db1', 'app', open);
    await otherDb.end();
    expect(clients.map((c) => c.id)).toEqual([1, 2, 3]);
    expect(pool.opened).toBe(3);
    // Reused twice, each time proved alive and reset first.
    expect(clients[0]!.queries).toEqual(['SELECT 1', 'DISCARD ALL', 'SELECT 1', 'DISCARD ALL', 'SELECT 1']);
    expect(clients[0]!.ended).toBe(false);
    await pool.closeAll();
    expect(clients.every((c) => c.ended)).toBe(true);
    expect(pool.size).toBe(0);
  });

  it('a connection the server closed is never handed out again', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    await (await pool.lease('db1', 'postgres', open)).end();
    clients[0]!.serverGone();
    const next = await pool.lease('db1', 'postgres', open);
    await next.query('SELECT 2');
    expect(clients).toHaveLength(2);
    expect(clients[1]!.queries).toEqual(['SELECT 2']);
    expect(clients[0]!.queries).toEqual([]);
  });

  it('one left inside a transaction is closed (rolling it back), not reused', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    const first = await pool.lease('db1', 'postgres', open);
    await first.query('BEGIN');
    await first.end();
    const second = await pool.lease('db1', 'postgres', open);
    expect(clients).toHaveLength(2);
    expect(clients[0]!.ended).toBe(true);
    await second.end();
  });

  it('two leases at once get two connections; drop(host) closes the idle ones and the leased one when given back', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    const a = await pool.lease('db1', 'postgres', open);
    const b = await pool.lease('db1', 'postgres', open);
    expect(clients).toHaveLength(2);
    await b.end();
    await pool.drop('db1');
    expect(clients[1]!.ended).toBe(true);
    expect(clients[0]!.ended).toBe(false);
    await a.end();
    expect(clients[0]!.ended).toBe(true);
    expect(pool.size).toBe(0);
    await (await pool.lease('db1', 'postgres', open)).end();
    expect(clients).toHaveLength(3);
  });

  it("drop(host, step) spares the connections opened for that step after its change, and only those; they serve later leases", async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    const step = {};
    const before = await pool.lease('db1', 'postgres', open);
    await before.end();
    // The step changes the server: the engine drops the host's connections before its apply...
    await pool.drop('db1');
    expect(clients[0]!.ended).toBe(true);
    // ...which opens one after the change, for its probe, and one of another step's (never spared here).
    const after = await pool.lease('db1', 'postgres', open, undefined, step);
    const other = await pool.lease('db1', 'postgres', open, undefined, {});
    await after.end();
    await other.end();
    // The drop after the apply keeps the step's own.
    await pool.drop('db1', step);
    expect(clients[1]!.ended).toBe(false);
    expect(clients[2]!.ended).toBe(true);
    const next = await pool.lease('db1', 'postgres', open);
    expect(clients).toHaveLength(3);
    expect(clients[1]!.queries.at(-1)).toBe('DISCARD ALL');
    await next.end();
    // From then on it is a connection like any other: the next change closes it.
    await pool.drop('db1', step);
    expect(clients[1]!.ended).toBe(true);
    expect(pool.size).toBe(0);
  });

  it('drop(host) sends the Terminate and returns without waiting for the server to close its side; closeAll() waits for it', async () => {
    const pool = new ConnectionPool();
    let serverCloses!: () => void;
    const closedByServer = new Promise<void>((resolve) => (serverCloses = resolve));
    class SlowToClose extends FakeClient {
      terminated = false;
      override async end(): Promise<void> {
        this.terminated = true; // pg's end() writes the Terminate before it waits
        await closedByServer;
        this.ended = true;
      }
    }
    const client = new SlowToClose(1);
    await (await pool.lease('db1', 'postgres', async () => client as unknown as Client)).end();
    await pool.drop('db1');
    expect(client.terminated).toBe(true);
    expect(client.ended).toBe(false);
    expect(pool.size).toBe(0);
    let allClosed = false;
    const closing = pool.closeAll().then(() => (allClosed = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(allClosed).toBe(false);
    serverCloses();
    await closing;
    expect(client.ended).toBe(true);
  });

  it('a close the server never answers is cut after the pool\'s limit: the run can end; a close that throws is no unhandled rejection', async () => {
    const pool = new ConnectionPool(50);
    let cut = 0;
    class Frozen extends FakeClient {
      connection = { stream: { destroy: () => void cut++ } };
      override end(): Promise<void> {
        return new Promise(() => undefined); // the backend never exits
      }
    }
    class Throwing extends FakeClient {
      override end(): Promise<void> {
        throw new Error('end threw');
      }
    }
    await (await pool.lease('db1', 'postgres', async () => new Frozen(1) as unknown as Client)).end();
    await (await pool.lease('db2', 'postgres', async () => new Throwing(2) as unknown as Client)).end();
    await pool.drop('db1');
    await pool.drop('db2');
    await pool.closeAll();
    expect(cut).toBe(1);
    expect(pool.size).toBe(0);
  });

  it('the check before reuse keeps to the caller\'s own limit when it is shorter than its own 10 s', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    await (await pool.lease('db1', 'postgres', open)).end();
    await (await pool.lease('db1', 'postgres', open, 2_500)).end();
    await (await pool.lease('db1', 'postgres', open, 60_000)).end();
    await (await pool.lease('db1', 'postgres', open)).end();
    expect(clients).toHaveLength(1);
    expect(clients[0]!.queries).toEqual(['DISCARD ALL', 'DISCARD ALL', 'DISCARD ALL']);
    expect(clients[0]!.timeouts).toEqual([2_500, 10_000, 10_000]);
  });

  it('end() twice gives it back once', async () => {
    const pool = new ConnectionPool();
    const { clients, open } = opener();
    const a = await pool.lease('db1', 'postgres', open);
    await a.end();
    const b = await pool.lease('db1', 'postgres', open);
    await a.end();
    const c = await pool.lease('db1', 'postgres', open);
    expect(clients).toHaveLength(2);
    await b.end();
    await c.end();
  });
});
