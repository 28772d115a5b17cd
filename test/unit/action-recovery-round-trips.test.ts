/**
 * The recovery action's state check makes its reads together, not one after another: over SSH each
 * read is a round trip (a session, a shell, an exec), and a standby build or a rejoin runs the check
 * twice (check, then apply re-plans). The transport here holds every call until the test releases the
 * calls made so far, all at once: the number of releases is the number of round trips one after
 * another. The outcome is the same as with the plain transport.
 */
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import recoveryAction from '../../src/actions/recovery.js';
import type { Host } from '../../src/model/inventory.js';
import type { Transport } from '../../src/transports/types.js';
import { LocalTransport } from '../../src/transports/local.js';
import { localHost, tempDir, testContext } from './support/action-context.js';

const HELD = new Set(['exec', 'readFile', 'stat', 'writeFile']);

/** A transport whose calls wait to be released; `drive` releases them in rounds until `work` ends. */
function heldTransport(inner: Transport): { transport: Transport; drive<T>(work: Promise<T>): Promise<{ value: T; rounds: number }> } {
  let held: Array<() => Promise<void>> = [];
  const transport = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => Promise<unknown>;
      if (!HELD.has(String(prop))) return fn.bind(target);
      return (...args: unknown[]) =>
        new Promise((resolve, reject) => {
          held.push(() => fn.apply(target, args).then(resolve, reject));
        });
    },
  });
  async function drive<T>(work: Promise<T>): Promise<{ value: T; rounds: number }> {
    let done = false;
    const settled = work.finally(() => {
      done = true;
    });
    settled.catch(() => undefined);
    let rounds = 0;
    while (!done) {
      // Everything the action can issue without an answer is issued by now.
      await new Promise((r) => setImmediate(r));
      if (held.length === 0) continue;
      const batch = held;
      held = [];
      rounds++;
      await Promise.allSettled(batch.map((start) => start()));
    }
    return { value: await settled, rounds };
  }
  return { transport, drive };
}

let tmp: { path: string; cleanup(): Promise<void> };
let pgdata: string;

beforeEach(async () => {
  tmp = await tempDir('recovery-rounds');
  pgdata = join(tmp.path, 'data');
  await execa('install', ['-d', '-o', 'postgres', '-m', '0700', pgdata]);
  for (const [name, text] of [
    ['PG_VERSION', '15\n'],
    ['postgresql.conf', "shared_buffers = '1GB'\n"],
    ['postgresql.auto.conf', "primary_slot_name = 'elsewhere'\n"],
    ['recovery.signal', ''],
  ] as const) {
    await writeFile(join(pgdata, name), text, { mode: 0o600 });
    await execa('chown', ['postgres', join(pgdata, name)]);
  }
});
afterEach(async () => {
  await tmp.cleanup();
});

function context(transport?: Transport) {
  const base = localHost().postgres;
  const host: Host = localHost({ name: 'db2', role: 'standby', upstream: 'db1', pgdata, postgres: { ...base, version: 15 } });
  const db1: Host = localHost({ name: 'db1', address: '10.0.0.11', postgres: { ...base, version: 15 } });
  const c = testContext({ host, diff: true, ...(transport ? { transport } : {}) });
  c.hosts = { db1, db2: host };
  c.inventory = { ...c.inventory, postgres: { version: 15 }, replication: { user: 'replicator', slots: true } };
  return c;
}

describe('recovery action: round trips of its state check', () => {
  it('a standby of 15 (its pgpass found by getent, postgresql.conf without the include, a recovery.signal to remove, an override in postgresql.auto.conf): 3 round trips, the same outcome', async () => {
    const input = { restore_command: 'pgbackrest --stanza=main archive-get %f "%p"' };
    const expected = await recoveryAction.check(context(), input);
    expect(expected.changed).toBe(true);

    const held = heldTransport(new LocalTransport(context().host));
    const { value, rounds } = await held.drive(recoveryAction.check(context(held.transport), input));
    expect(value).toEqual(expected);
    // The version and the .pgpass path; the files, postgresql.conf, the settings directory, the leftovers
    // and postgresql.auto.conf; the modes of what exists.
    expect(rounds).toBe(3);
  });
});
