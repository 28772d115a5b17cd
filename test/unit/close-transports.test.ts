/**
 * The end of a run (RunContext.closeTransports): every connection's Terminate goes out first; the local
 * transports (whose helpers' sessions take a while to end) close meanwhile, while the servers end their
 * backends, and an SSH session only once its connections have closed (its bridges ride on it).
 */
import { EventEmitter } from 'node:events';
import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { FakeTransport } from '../../src/transports/fake.js';
import type { Transport } from '../../src/transports/types.js';
import { bareRun } from './support/bare-run.js';
import { host } from './support/engine-harness.js';

/** A transport of `kind` whose close() is recorded in `seen`. */
function recorded(name: string, kind: Transport['kind'], seen: string[]): Transport {
  const transport = new FakeTransport(name);
  Object.defineProperty(transport, 'kind', { value: kind });
  transport.close = async () => void seen.push(`close ${kind} ${name}`);
  return transport;
}

/** A pg client whose end() writes the Terminate at once (recorded) and resolves when the server closes (`closed()`). */
function client(name: string, seen: string[]): { client: Client; closed(): void } {
  let closed!: () => void;
  const ended = new Promise<void>((resolve) => (closed = resolve));
  const fake = Object.assign(new EventEmitter(), {
    end: () => {
      seen.push(`terminate ${name}`);
      return ended;
    },
  });
  return { client: fake as unknown as Client, closed };
}

describe('closing a run', () => {
  it('the Terminates go out first, local transports close while the servers close, an SSH session after its connections', async () => {
    const seen: string[] = [];
    const hosts = { db1: host('db1', 'primary'), db2: host('db2') };
    const servers = { db1: client('db1', seen), db2: client('db2', seen) };
    const run = bareRun(hosts, {
      createTransport: (h) => recorded(h.name, h.name === 'db1' ? 'local' : 'ssh', seen),
      connectPostgres: async (_transport, h) => servers[h.name as 'db1' | 'db2'].client,
    });
    for (const name of ['db1', 'db2'] as const) {
      run.transportFor(name);
      // Leased and given back: idle in the pool, as at the end of a run.
      await (await run.connectPostgres(name, {})).end();
    }
    let done = false;
    const closing = run.closeTransports().then(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Neither server has closed yet: the local transport is closed all the same, the SSH one is not.
    expect(seen).toEqual(['terminate db1', 'terminate db2', 'close local db1']);
    servers.db1.closed();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(seen).not.toContain('close ssh db2');
    servers.db2.closed();
    await closing;
    expect(done).toBe(true);
    expect(seen).toEqual(['terminate db1', 'terminate db2', 'close local db1', 'close ssh db2']);
  });
});
