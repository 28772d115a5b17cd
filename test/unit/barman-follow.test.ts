/**
 * The barman action's part of Barman following a new primary (include/backup/barman/follow-primary.yml):
 * reset-receive-wal stops the receive-wal that streams from the old primary and resets its position, retrying
 * --reset while the stopped process still holds its lock; create-slot looks for the slot on the host named
 * as the new primary, not on the inventory's (stale) primary.
 */
import { describe, expect, it } from 'vitest';
import barmanAction from '../../src/actions/barman.js';

type Reply = { exitCode?: number; stdout?: string; stderr?: string };

function ctxFor(replies: Array<(argv: string[]) => Reply>, slotExists = false) {
  const ran: string[][] = [];
  const connected: string[] = [];
  const transport = {
    exec: async (argv: string[]) => {
      ran.push(argv);
      const reply = replies[Math.min(ran.length - 1, replies.length - 1)]!(argv);
      return { argv, exitCode: reply.exitCode ?? 0, stdout: reply.stdout ?? '', stderr: reply.stderr ?? '', durationMs: 1, timedOut: false };
    },
  };
  const hosts = {
    db1: { name: 'db1', role: 'primary', address: '10.0.0.11', postgres: { version: 15 } },
    db2: { name: 'db2', role: 'standby', address: '10.0.0.12', postgres: { version: 15 } },
    bk1: { name: 'bk1', role: 'repository', address: '10.0.0.20', postgres: { version: 15 } },
  };
  const ctx = {
    host: hosts.bk1,
    hosts,
    inventory: { cluster: 'main', backup: { tool: 'barman', repoHost: 'bk1', barman: { password: { env: 'P' } } } },
    transport,
    transportFor: () => transport,
    checkMode: false,
    signal: new AbortController().signal,
    log: () => undefined,
    connectPostgres: async ({ hostName }: { hostName: string }) => {
      connected.push(hostName);
      return { query: async () => ({ rowCount: slotExists ? 1 : 0, rows: [] }), end: async () => undefined };
    },
  };
  return { ctx: ctx as never, ran, connected };
}

describe('barman reset-receive-wal', () => {
  it('stops receive-wal, retries --reset while the stopped process still holds its lock, then reports the reset', async () => {
    const still = 'Unable to reset the status of receive-wal for server main. Process is still running\n';
    const { ctx, ran } = ctxFor([
      () => ({ stdout: 'Stopped process receive-wal(4242)\n' }),
      () => ({ stdout: still }),
      () => ({ stdout: still }),
      () => ({ stdout: 'Resetting receive-wal directory status\nRemoving status file /var/lib/barman/main/streaming/000000010000000000000007.partial\n' }),
    ]);
    const r = await barmanAction.apply(ctx, { command: 'reset-receive-wal', primary: 'db2' }, { changed: true });
    expect(ran).toEqual([
      ['barman', 'receive-wal', '--stop', 'main'],
      ['barman', 'receive-wal', '--reset', 'main'],
      ['barman', 'receive-wal', '--reset', 'main'],
      ['barman', 'receive-wal', '--reset', 'main'],
    ]);
    expect(r).toMatchObject({ changed: true, data: { stopped: true, reset: true } });
    expect(r.msg).toBe("receive-wal of server main stopped and reset to the position of db2's slot (barman cron starts it)");
  });

  it('nothing running and the position aligned: no change', async () => {
    const { ctx, ran } = ctxFor([
      () => ({ exitCode: 1, stderr: 'ERROR: Termination of receive-wal failed: no such process for server main\n' }),
      () => ({ stdout: 'Nothing to do. Position of receive-wal is aligned.\n' }),
    ]);
    const r = await barmanAction.apply(ctx, { command: 'reset-receive-wal', primary: 'db2' }, { changed: true });
    expect(ran).toHaveLength(2);
    expect(r).toMatchObject({ changed: false, data: { stopped: false, reset: false } });
  });

  it('a --stop that fails for another reason fails the step, naming it', async () => {
    const { ctx } = ctxFor([() => ({ exitCode: 1, stderr: 'ERROR: Cannot terminate process receive-wal(4242)\n' })]);
    const e = (await barmanAction.apply(ctx, { command: 'reset-receive-wal', primary: 'db2' }, { changed: true }).catch((x: unknown) => x)) as Error;
    expect(e.message).toContain('Cannot terminate process receive-wal(4242)');
  });

  it('under plan: says what it would do, runs nothing', async () => {
    const { ctx, ran } = ctxFor([() => ({})]);
    const r = await barmanAction.check(ctx, { command: 'reset-receive-wal', primary: 'db2' });
    expect(ran).toEqual([]);
    expect(r).toMatchObject({ changed: true });
    expect(r.msg).toContain("reset its position to db2's");
  });
});

describe('barman create-slot with a primary', () => {
  it("looks for Barman's slot on the host named (the promoted candidate), then creates it through Barman", async () => {
    const { ctx, ran, connected } = ctxFor([() => ({ stdout: '{}' })]);
    const r = await barmanAction.apply(ctx, { command: 'create-slot', primary: 'db2' }, { changed: true });
    expect(connected).toEqual(['db2']);
    expect(ran).toEqual([['barman', '-f', 'json', 'receive-wal', '--create-slot', 'main']]);
    expect(r).toMatchObject({ changed: true, msg: 'created the replication slot barman_main on db2' });
  });

  it("without one, the inventory's primary", async () => {
    const { ctx, ran, connected } = ctxFor([() => ({ stdout: '{}' })], true);
    const r = await barmanAction.apply(ctx, { command: 'create-slot' }, { changed: false });
    expect(connected).toEqual(['db1']);
    expect(ran).toEqual([]);
    expect(r).toMatchObject({ changed: false, msg: 'db1 has the replication slot barman_main' });
  });
});
