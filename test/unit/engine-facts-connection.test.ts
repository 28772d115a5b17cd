/**
 * A local host's first facts read asks a connection the run opens for it (RunContext, facts-read.ts) where
 * the server's socket file is there; the run keeps it for its steps that connect (Action.connects), and
 * closes it at once when no step does, so that no session of pgplay's stays open on a server the run only
 * reads (it would hold up a smart shutdown or a DROP DATABASE run by a command step).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import { startRun } from '../../src/engine/start.js';
import type { Host } from '../../src/model/inventory.js';
import type { Step } from '../../src/model/playbook.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { bareRun } from './support/bare-run.js';
import { host, runAction } from './support/engine-harness.js';

let dir: string;
let listener: Server;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgplay-facts-conn-'));
  // A socket file where the inventory says the server listens: what the first read looks for.
  listener = createServer();
  await new Promise<void>((resolve) => listener.listen(join(dir, '.s.PGSQL.5432'), resolve));
});
afterAll(() => {
  listener.close();
  rmSync(dir, { recursive: true, force: true });
});

const connecting: Action<{ argv: string[] }> = { ...runAction, name: 'query', connects: true };

/** Runs startRun over one local host whose facts read asks the connection it is given, and counts the pool after it. */
async function openAfterStart(steps: Step[]): Promise<{ opened: number; open: number; ended: number }> {
  const db1: Host = { ...host('db1', 'primary'), postgres: { ...host('db1', 'primary').postgres, socketDir: dir, port: 5432 } };
  let ended = 0;
  const client = () => Object.assign(new EventEmitter(), { end: async () => void ended++, query: async () => ({ rows: [] }) }) as unknown as Client;
  const transport = new FakeTransport('db1');
  Object.defineProperty(transport, 'kind', { value: 'local' });
  const run = bareRun(
    { db1 },
    {
      createTransport: () => transport,
      connectPostgres: async () => client(),
      getAction: (name) => (name === 'query' ? connecting : name === 'run' ? runAction : undefined),
      gatherFacts: async (_host, _transport, _areas, connection) => {
        // As readAllFacts: the connection answers, then goes back to the pool.
        await (await connection?.())?.end();
        return { reachable: true, pgdata_present: true, running: true, in_recovery: false };
      },
    },
    { name: 'test', steps },
  );
  await startRun(run, () => ['db1'], run.signal);
  return { opened: run.connections.opened, open: run.connections.size, ended };
}

describe("the connection a host's first facts read opens", () => {
  it('is kept for the steps when one connects', async () => {
    expect(await openAfterStart([{ id: 'q', hosts: 'db1', query: { argv: [] } }])).toEqual({ opened: 1, open: 1, ended: 0 });
  });

  it('is closed before the first step when none does', async () => {
    expect(await openAfterStart([{ id: 'cmd', hosts: 'db1', run: { argv: ['true'] } }])).toEqual({ opened: 1, open: 0, ended: 1 });
  });
});
