/**
 * pitr_target's reads (issue 14, the drill's in-step cost): the repository (pgbackrest info on the
 * backup host) and the primary (its WAL segment size, where a restore point lies in its log) do not
 * depend on each other, so they are read side by side; the primary's reads stay one after the other on
 * one connection. The fakes below make each side wait until the other has begun: reads one after the
 * other never finish (the test times out), reads side by side do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { pitrTargetAction } from '../../src/actions/pitr-target.js';
import type { ExecOptions, ExecResult, Transport } from '../../src/transports/types.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { localHost, testContext } from './support/action-context.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/pgbackrest', name), 'utf8');
const INFO = fixture('info3.json');
// Every segment of archive 15-1 that info3.json lists (07..0D).
const LISTING = JSON.stringify(
  Object.fromEntries(
    ['07', '08', '09', '0A', '0B', '0C', '0D'].map((s) => [`0000000100000000/0000000100000000000000${s}-${'a'.repeat(40)}.gz`, { type: 'file', time: 1795268500 }]),
  ),
);

/** A promise and its resolver: "this side has begun". */
function signal(): { promise: Promise<void>; fire: () => void } {
  let fire!: () => void;
  const promise = new Promise<void>((r) => (fire = r));
  return { promise, fire };
}

function fakeTransport(exec: (argv: string[]) => Promise<ExecResult>): Transport {
  return { exec: (argv: string[], _o?: ExecOptions) => exec(argv) } as unknown as Transport;
}

describe('pitr_target reads the repository and the primary side by side', () => {
  it('neither waits for the other to finish; the primary is read in order on one connection at a time', async () => {
    const repositoryBegun = signal();
    const primaryBegun = signal();
    const order: string[] = [];
    let leased = 0;
    let mostLeased = 0;

    const drill: Host = localHost({ name: 'drill1', role: 'drill', pgdata: '/var/lib/drill/data' });
    const db1: Host = localHost({ name: 'db1', role: 'primary', pgdata: '/var/lib/db1/data' });
    const bk1: Host = localHost({ name: 'bk1', role: 'repository', pgdata: undefined });
    const bk1Transport = fakeTransport(async (argv) => {
      const command = argv[argv.length - 1] === 'info' ? 'info' : argv.includes('repo-ls') ? 'repo-ls' : argv.join(' ');
      order.push(`bk1 ${command}`);
      if (command === 'info') {
        repositoryBegun.fire();
        // Answers only once the primary is being read too.
        await primaryBegun.promise;
        return { exitCode: 0, stdout: INFO, stderr: '' } as ExecResult;
      }
      if (command === 'repo-ls') return { exitCode: 0, stdout: LISTING, stderr: '' } as ExecResult;
      throw new Error(`unexpected command on bk1: ${argv.join(' ')}`);
    });
    const client = {
      async query(q: string | { text: string }) {
        const text = typeof q === 'string' ? q : q.text;
        order.push(`db1 ${text.slice(0, 40)}`);
        primaryBegun.fire();
        // Answers only once the repository is being read too.
        await repositoryBegun.promise;
        if (/wal_segment_size/.test(text)) return { rows: [{ b: String(16 * 1024 * 1024) }] };
        throw new Error(`unexpected query: ${text}`);
      },
      async end() {
        leased--;
      },
    };
    const base = testContext({ host: drill });
    const inventory: Inventory = {
      cluster: 'demo',
      postgres: { version: 15 },
      backup: { tool: 'pgbackrest', repoHost: 'bk1', stanza: 'demo' },
      hosts: { drill1: { address: '127.0.0.1', role: 'drill' }, db1: { address: '127.0.0.1', role: 'primary' }, bk1: { address: '127.0.0.1', role: 'repository' } },
    } as Inventory;
    const ctx = {
      ...base,
      inventory,
      hosts: { drill1: drill, db1, bk1 },
      transportFor: (name: string) => (name === 'bk1' ? bk1Transport : base.transport),
      factsOf: async (name: string) => ({ ...base.facts, running: name === 'db1' }),
      connectPostgres: async (o?: { hostName?: string }) => {
        expect(o?.hostName).toBe('db1');
        leased++;
        mostLeased = Math.max(mostLeased, leased);
        return client as unknown as Client;
      },
    };

    const outcome = await pitrTargetAction.check(ctx, { type: 'immediate', value: '' });
    expect(outcome.changed).toBe(false);
    expect(outcome.data).toMatchObject({ set: '20261121-133900F_20261121-134020I', repository_host: 'bk1', wal: { segment_size: 16 * 1024 * 1024 } });
    // Both sides began before either answered; the archive listing follows the choice of the set.
    expect(order.slice(0, 2).map((o) => o.split(' ')[0]).sort()).toEqual(['bk1', 'db1']);
    expect(order[order.length - 1]).toBe('bk1 repo-ls');
    // The primary's reads never need a second connection (a second socket bridge).
    expect(mostLeased).toBe(1);
    // Reads one after the other wait on each other for ever: fail in seconds rather than the suite's two minutes.
  }, 10_000);
});
