/**
 * The cluster's host locks (src/lock/host-lock.ts) are taken side by side: the repository host's lock
 * command does not wait for the primary's answer. A refusal on one host still releases the locks taken
 * on the others and names the holder, as before.
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { acquireHostLocks } from '../../src/lock/host-lock.js';
import type { Host, Inventory } from '../../src/model/inventory.js';
import { FakeTransport, type FakeExecHandler } from '../../src/transports/fake.js';

const host = (name: string, role: Host['role'], pgdata?: string): Host =>
  ({ name, address: '127.0.0.1', role, pgdata, postgres: {}, connection: { transport: 'local' }, vars: {} }) as unknown as Host;
const inventory = { cluster: 'main', postgres: { version: 15 }, hosts: {}, backup: { repoHost: 'bk1', repoPath: '/repo/r' } } as unknown as Inventory;
const targets = [host('db1', 'primary', '/pg/db1'), host('bk1', 'repository')];
const options = { runId: 'run-1', playbook: '/p.yml', warn: () => undefined };
const kind = (argv: string[]) => argv[3];

describe('host locks', () => {
  it('are taken side by side: the second host is asked before the first answers', async () => {
    const order: string[] = [];
    let second!: () => void;
    const secondAsked = new Promise<void>((resolve) => (second = resolve));
    // Without a second lock command the first answers after a while anyway, and the order shows it.
    const fallback = setTimeout(() => (order.push('fallback'), second()), 2000);
    const handler: FakeExecHandler = async (argv, _o, t) => {
      if (kind(argv) !== 'pgplay-lock') return { exitCode: 0 };
      order.push(`ask ${t.hostName}`);
      if (t.hostName === 'db1') await secondAsked;
      else second();
      order.push(`answer ${t.hostName}`);
      return { exitCode: 0, stdout: 'acquired\n' };
    };
    const transports = new Map(targets.map((h) => [h.name, new FakeTransport(h.name, handler)]));
    const locks = await acquireHostLocks(targets, inventory, (n) => transports.get(n)!, options);
    clearTimeout(fallback);
    expect(order).toEqual(['ask db1', 'ask bk1', 'answer bk1', 'answer db1']);
    expect(locks.paths).toEqual(['db1:/pg/.pgplay/locks/main.lock', 'bk1:/repo/.pgplay/locks/main.lock']);
  });

  it('a lock held by a live run on one host refuses the run (exit 3) and releases the one taken on the other', async () => {
    const holder = JSON.stringify({ cluster: 'main', runId: 'other', playbook: '/q.yml', pid: process.pid, hostname: hostname(), started: '', procStart: undefined, operator: 'x' });
    const handler: FakeExecHandler = (argv, _o, t) => {
      if (kind(argv) === 'pgplay-lock') return t.hostName === 'bk1' ? { exitCode: 0, stdout: `held\n${holder}\n` } : { exitCode: 0, stdout: 'acquired\n' };
      return { exitCode: 0 };
    };
    const transports = new Map(targets.map((h) => [h.name, new FakeTransport(h.name, handler)]));
    const error = await acquireHostLocks(targets, inventory, (n) => transports.get(n)!, options).catch((e) => e);
    expect(error.exitCode).toBe(3);
    expect(error.message).toMatch(/bk1/);
    const released = transports.get('db1')!.calls.filter((c) => c.kind === 'exec' && c.argv![3] === 'pgplay-unlock').map((c) => c.argv![4]);
    expect(released).toEqual(['/pg/.pgplay/locks/main.lock']);
  });
});
