import { beforeEach, describe, expect, it } from 'vitest';
import { harness, promoted, results } from './support/engine-harness.js';

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

  it('does not check under plan (nothing changes), nor around steps that cannot change a role', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, [], cluster);
    expect((await h.run({ steps: [{ id: 'promote', hosts: 'db2', promote: {} }] }, { check: true })).exitCode).toBe(0);
    expect((await h.run({ steps: [{ id: 'other', hosts: 'db2', run: { argv: ['x'] } }] })).exitCode).toBe(0);
  });
});
