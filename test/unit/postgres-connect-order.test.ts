/**
 * A run's first connection loads pg (~10 ms of this process's on the benchmark machine) and starts the
 * socket's bridge (a helper forks it): connectPostgres asks the transport for the socket first, so that
 * the bridge starts while pg loads, not after.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { connectPostgres } from '../../src/postgres/client.js';
import { FakeTransport } from '../../src/transports/fake.js';
import type { Transport } from '../../src/transports/types.js';
import { host } from './support/engine-harness.js';

const order: string[] = [];

vi.mock('pg', async () => {
  order.push('pg loaded');
  return vi.importActual('pg');
});

describe('a connection', () => {
  it('asks for the socket before pg loads, and reports a socket that does not open as before', async () => {
    const transport: Transport = new FakeTransport('db1');
    transport.openUnixSocket = async (path: string) => {
      order.push(`socket ${path}`);
      // A server that closes at once: connect fails, which is all this test needs of it.
      const stream = new PassThrough();
      setImmediate(() => stream.end());
      return stream;
    };
    await expect(connectPostgres(transport, host('db1', 'primary'))).rejects.toThrow(/cannot connect to PostgreSQL as postgres on \/tmp\/\.s\.PGSQL\.5432/);
    expect(order).toEqual(['socket /tmp/.s.PGSQL.5432', 'pg loaded']);

    transport.openUnixSocket = async () => {
      throw new Error('no helper could open it');
    };
    await expect(connectPostgres(transport, host('db1', 'primary'))).rejects.toThrow(
      'cannot connect to PostgreSQL as postgres on /tmp/.s.PGSQL.5432 (running as postgres): no helper could open it',
    );
  });

  it('a socket that breaks while pg loads is reported as a connection that could not open, not thrown at the process', async () => {
    const transport: Transport = new FakeTransport('db1');
    transport.openUnixSocket = async () => {
      const stream = new PassThrough();
      // Before connectPostgres gives it to a client: its bridge or helper went away.
      process.nextTick(() => stream.destroy(new Error('bridge reset by its helper')));
      return stream;
    };
    await expect(connectPostgres(transport, host('db1', 'primary'))).rejects.toThrow(
      'cannot connect to PostgreSQL as postgres on /tmp/.s.PGSQL.5432 (running as postgres): bridge reset by its helper',
    );
  });
});
