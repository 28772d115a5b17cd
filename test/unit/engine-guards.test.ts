import { beforeEach, describe, expect, it } from 'vitest';
import type { Action } from '../../src/actions/types.js';
import type { ActionContext } from '../../src/engine/action.js';
import { harness, promoteAction, promoted, results } from './support/engine-harness.js';

/** db1 primary (read-write), db2 and db3 standbys (in recovery) unless promoted. */
const cluster = (h: string) => ({ in_recovery: h !== 'db1' && !promoted.has(h) });

describe('guard steps always run', () => {
  const steps = [
    { id: 'pre-check', guard: true, hosts: 'db1', run: { argv: ['check'] } },
    { id: 'fence', guard: true, hosts: 'primary', run: { argv: ['fence'] } },
    { id: 'work', hosts: 'db2', run: { argv: ['work'] }, tags: ['work'] },
    { id: 'after', hosts: 'db2', run: { argv: ['after'] } },
  ];

  it('under --from: the guards before the step run, the other steps before it do not', async () => {
    const h = harness(['db1', 'db2']);
    await h.run({ steps: [...steps] }, { from: 'after' });
    expect(results(h.events)).toEqual(['pre-check@db1=changed', 'fence@db1=changed', 'after@db2=changed']);
  });

  it('under --tags and --limit: guards run, on their hosts outside the limit too', async () => {
    const h = harness(['db1', 'db2']);
    await h.run({ steps: [...steps] }, { tags: ['work'], limit: ['db2'] });
    expect(results(h.events)).toEqual(['pre-check@db1=changed', 'fence@db1=changed', 'work@db2=changed']);
  });

  it('under --resume: a guard done in the resumed run runs again, other done steps are skipped', async () => {
    const h = harness(['db1', 'db2']);
    await h.run({ steps: [...steps] }, { alreadyDone: new Set(['pre-check@db1', 'fence@db1', 'work@db2']) });
    expect(results(h.events)).toEqual(['pre-check@db1=changed', 'fence@db1=changed', 'work@db2=skipped', 'after@db2=changed']);
  });

  it('the guard key is validated by the playbook schema', async () => {
    const { buildPlaybookSchema } = await import('../../src/schema/playbook.js');
    const schema = buildPlaybookSchema([]) as { definitions: { step: { properties: Record<string, unknown> } } };
    expect(schema.definitions.step.properties.guard).toMatchObject({ type: 'boolean' });
  });
});

/** A start on the fake cluster that declares the server changed, as postgres: started does (its refresh reads it); `apply` its own. */
const startAction = (apply?: Action<Record<string, never>>['apply']): Action<Record<string, never>> => ({
  ...promoteAction,
  name: 'start',
  changesRole: () => 'starts',
  changes: ['server'],
  ...(apply ? { apply } : {}),
});

describe('one read-write server: the engine checks it around every step that can change a role', () => {
  beforeEach(() => promoted.clear());

  it('refuses (exit 3) to promote a standby while the primary runs read-write, before anything changes', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], cluster);
    const outcome = await h.run({ steps: [{ id: 'promote', hosts: 'db2', promote: {} }] }, { yes: true });
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toContain('db1 runs read-write: promote would make db2 a second primary');
    expect(outcome.error!.hint).toContain('pg_ctl stop -m fast -D /pg/db1');
    expect(promoted.has('db2')).toBe(false);
  });

  it('a split brain the run finds at its start refuses a run that may change a role before its first change (a fence included)', async () => {
    // db1 and db3 both run read-write (one cluster: their identifiers are not known apart); promote.yml-like:
    // fence the old primary (a guard), then promote the candidate. The fence used to run, then the
    // promotion was refused: the old primary stopped and no new one.
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => ({ ...cluster(host), in_recovery: host === 'db2' }), { start: true });
    const outcome = await h.run({ steps: [{ id: 'fence', hosts: 'db1', guard: true, run: { argv: ['stop-db1'] } }, { id: 'promote', hosts: 'db2', promote: {} }] }, { yes: true });
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toContain('2 servers run read-write (db1, db3); a cluster has one primary (split brain)');
    expect(results(h.events)).toEqual([]);
    expect(h.calls.filter((c) => c.kind === 'exec')).toEqual([]);
    expect(promoted.has('db2')).toBe(false);
  });

  it('a run with no step that may change a role is not refused for a split brain it does not touch', async () => {
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => ({ ...cluster(host), in_recovery: host === 'db2' }), { start: true });
    const outcome = await h.run({ steps: [{ id: 'note', hosts: 'db2', run: { argv: ['note'] } }] }, { yes: true });
    expect(outcome.exitCode).toBe(0);
  });

  it('promotes once the old primary is down', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], (host) => ({ ...cluster(host), running: host !== 'db1' }));
    const outcome = await h.run({ steps: [{ id: 'promote', hosts: 'db2', promote: {} }] }, { yes: true });
    expect(outcome.exitCode).toBe(0);
    expect(promoted.has('db2')).toBe(true);
  });

  it('stops the run (exit 3) when a start leaves two servers read-write, naming both', async () => {
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], cluster);
    const outcome = await h.run({
      steps: [
        { id: 'start', hosts: 'db2', promote: { role: 'starts' } },
        { id: 'next', hosts: 'db3', run: { argv: ['next'] } },
      ],
    });
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toBe('after step start: 2 servers run read-write (db1, db2); a cluster has one primary (split brain)');
    expect(results(h.events)).toEqual(['start@db2=changed']);
  });

  it('a read-write server of another cluster (another system identifier) is not a second primary', async () => {
    const sysid = (h: string) => ({ ...cluster(h), system_identifier: h === 'db3' ? '222' : '111', in_recovery: h === 'db2' && !promoted.has(h) });
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => ({ ...sysid(host), running: host !== 'db1' }));
    const outcome = await h.run({ steps: [{ id: 'promote', hosts: 'db2', promote: {} }] }, { yes: true });
    expect(outcome.exitCode).toBe(0);
    expect(promoted.has('db2')).toBe(true);
  });

  it('after a start, the server the step read after its change is not read again; every other server is', async () => {
    const reads: string[] = [];
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], (host) => ({ ...cluster(host), running: host !== 'db1' }), {
      actions: [startAction()],
      gatherFacts: async (hst) => {
        reads.push(hst.name);
        return { reachable: true, pgdata_present: true, running: hst.name !== 'db1', in_recovery: !promoted.has(hst.name) && hst.name !== 'db1' };
      },
    });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', start: {} }] });
    expect(outcome.exitCode).toBe(0);
    // The run's facts; the invariant's read before the step (all three); then db2's refresh after its
    // start and, beside it, the invariant's read of db1 and db3: db2 is not read again.
    expect(reads.slice(0, 6)).toEqual(['db1', 'db2', 'db3', 'db1', 'db2', 'db3']);
    expect(reads.slice(6).sort()).toEqual(['db1', 'db2', 'db3']);
  });

  it('after a start on one host, the other servers are read while the step reads its own, not after it', async () => {
    let db1Read!: () => void;
    const db1ReadAfter = new Promise<void>((resolve) => (db1Read = resolve));
    const count = new Map<string, number>();
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, {
      actions: [startAction()],
      gatherFacts: async (hst) => {
        const n = (count.get(hst.name) ?? 0) + 1;
        count.set(hst.name, n);
        if (hst.name === 'db1' && n === 3) db1Read();
        // db2's read after its start answers only once db1's read after the step has begun: one after
        // the other, this would never answer.
        if (hst.name === 'db2' && n === 3) {
          await Promise.race([db1ReadAfter, new Promise((_, reject) => setTimeout(() => reject(new Error('db1 was not read beside db2')), 2000))]);
        }
        return { reachable: true, pgdata_present: true, running: hst.name !== 'db1', in_recovery: hst.name !== 'db1' };
      },
    });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', start: {} }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(Object.fromEntries(count)).toEqual({ db1: 3, db2: 3 });
  });

  it('the other servers are read as soon as the step says its change has ended (a start returned), beside what it reads next', async () => {
    let db1Read!: () => void;
    const db1ReadAfter = new Promise<void>((resolve) => (db1Read = resolve));
    // The start's change is over; its read of the server it started (probeAfterChange) answers only once
    // the invariant's read of db1 has begun: with db1 read after the apply, this would never answer.
    const start = startAction(async (ctx) => {
      ctx.changeEnded?.();
      await Promise.race([db1ReadAfter, new Promise((_, reject) => setTimeout(() => reject(new Error('db1 was not read beside the probe')), 2000))]);
      return { changed: true };
    });
    const reads: string[] = [];
    const h = harness(['db1', 'db2'], undefined, 0, [], undefined, {
      actions: [start],
      gatherFacts: async (hst) => {
        reads.push(hst.name);
        if (hst.name === 'db1' && reads.filter((r) => r === 'db1').length === 3) db1Read();
        return { reachable: true, pgdata_present: true, running: hst.name !== 'db1', in_recovery: hst.name !== 'db1' };
      },
    });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', start: {} }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(outcome.exitCode).toBe(0);
    // The run's facts, the read before the step, db1 once after the change, db2's refresh: db1 is not read again.
    expect(reads.filter((r) => r === 'db1')).toHaveLength(3);
    expect(reads.filter((r) => r === 'db2')).toHaveLength(3);
  });

  it('a step that said its change ended and then made a second primary anyway is caught after the step', async () => {
    // Misuse: the action says its change ended, then changes db2's role after all. The invariant read db1
    // early, but db2 (changed after the end it announced, and returning no facts) is read after the step.
    const start = startAction(async (ctx) => {
      ctx.changeEnded?.();
      promoted.add(ctx.host.name);
      throw new Error('the server started but did not answer in time');
    });
    const h = harness(['db1', 'db2'], undefined, 0, [], cluster, { actions: [start] });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', start: {} }] });
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toBe('after step start: 2 servers run read-write (db1, db2); a cluster has one primary (split brain)');
  });

  it('a step on two hosts: a server read before the other host\'s change ended is read again after the step', async () => {
    let refreshed!: () => void;
    const db2Refreshed = new Promise<void>((resolve) => (refreshed = resolve));
    // db3's start ends only once db2's refresh after its own start has been read.
    const start = startAction(async (ctx) => {
      if (ctx.host.name === 'db3') await db2Refreshed;
      return { changed: true };
    });
    const reads: string[] = [];
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], undefined, {
      actions: [start],
      gatherFacts: async (hst) => {
        reads.push(hst.name);
        if (hst.name === 'db2' && reads.filter((r) => r === 'db2').length === 3) refreshed();
        return { reachable: true, pgdata_present: true, running: hst.name !== 'db1', in_recovery: hst.name !== 'db1' };
      },
    });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: ['db2', 'db3'], start: {} }] });
    expect(outcome.exitCode).toBe(0);
    // After the step: db1 (never read during it) and db2 (read before db3's change ended); db3's refresh stands.
    expect(reads.slice(6, 8).sort()).toEqual(['db2', 'db3']);
    expect(reads.slice(8)).toEqual(['db1', 'db2']);
  });

  it('a start whose apply failed after making a second primary is read again after the step, and stops the run', async () => {
    // db2 leaves recovery, then its apply fails: no refresh, so nothing read after the change vouches for db2.
    const failing = startAction(async (ctx) => {
      promoted.add(ctx.host.name);
      throw new Error('the server started but did not answer in time');
    });
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], cluster, { actions: [failing] });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', start: {} }] });
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toBe('after step start: 2 servers run read-write (db1, db2); a cluster has one primary (split brain)');
  });

  it('a start abandoned by its step timeout while it runs still has every server read after the step', async () => {
    // db2 leaves recovery, then its apply hangs (a wait that outlives the step's timeout): nothing has
    // ended, and the reads before the step must not stand for after it.
    let release!: () => void;
    const hung = new Promise<void>((resolve) => (release = resolve));
    const hanging = startAction(async (ctx) => {
      promoted.add(ctx.host.name);
      await hung;
      return { changed: true };
    });
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], cluster, { actions: [hanging] });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', timeout: '200ms', start: {} }] });
    release();
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toBe('after step start: 2 servers run read-write (db1, db2); a cluster has one primary (split brain)');
  });

  it('a start made by an earlier attempt of a step that ends ok (until, retries) is read after the step', async () => {
    // The first attempt starts db2 (a second primary) and reports a change, which until does not accept;
    // the second finds it started: ok. The step changed something all the same.
    const once = { ...startAction(), check: async (ctx: ActionContext) => ({ changed: !promoted.has(ctx.host.name) }) } as Action<Record<string, never>>;
    const h = harness(['db1', 'db2', 'db3'], undefined, 0, [], cluster, { actions: [once] });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', retries: 1, delay: 0, until: 'not result.changed', start: {} }] });
    expect(results(h.events)).toEqual(['start@db2=ok']);
    expect(outcome.exitCode).toBe(3);
    expect(outcome.error!.message).toBe('after step start: 2 servers run read-write (db1, db2); a cluster has one primary (split brain)');
  });

  it('does not check under plan (nothing changes), nor around steps that cannot change a role', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], cluster);
    expect((await h.run({ steps: [{ id: 'promote', hosts: 'db2', promote: {} }] }, { check: true })).exitCode).toBe(0);
    expect((await h.run({ steps: [{ id: 'other', hosts: 'db2', run: { argv: ['x'] } }] })).exitCode).toBe(0);
  });
});
