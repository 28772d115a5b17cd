/**
 * restore.yml's refusals, run by the engine over fake hosts: whether a server of the cluster runs
 * read-write, or cannot be reached, is read from the facts gathered when the run starts. The real
 * servers are in test/e2e/dr-machines.test.ts (fixtures/dr-machines/restore.ts); here every combination is quick.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { assertAction } from '../../src/actions/assert.js';
import type { HostFacts } from '../../src/model/facts.js';
import type { Playbook } from '../../src/model/playbook.js';
import { harness, results } from './support/engine-harness.js';

const PLAYBOOK = parse(readFileSync('playbooks/restore.yml', 'utf8')) as Playbook;
const GUARDS = ['unreachable', 'no-other-primary', 'in-place-confirmed'];
const steps = PLAYBOOK.steps.filter((s) => GUARDS.includes(s.id));

const READ_WRITE: Partial<HostFacts> = { running: true, in_recovery: false };
const STANDBY: Partial<HostFacts> = { running: true, in_recovery: true };
const STOPPED: Partial<HostFacts> = { running: false };

async function restore(params: Record<string, unknown>, state: Record<string, Partial<HostFacts>>, unreachable: string[] = []) {
  const h = harness(['db1', 'db2'], undefined, 0, unreachable, (name) => state[name] ?? {}, { actions: [assertAction] });
  const end = await h.run({ ...PLAYBOOK, steps }, { yes: true }, { params: { in_place: '', down: '', discard_current: false, ...params } });
  const runEnd = h.events.find((e) => e.type === 'run-end') as { exitCode: number; error?: { message: string; step?: string } } | undefined;
  return { end, exitCode: runEnd?.exitCode, error: runEnd?.error, results: results(h.events) };
}

describe('restore.yml refusals', () => {
  it('refuses an in-place restore of the read-write primary unless confirmed', async () => {
    const r = await restore({ host: 'db1' }, { db1: READ_WRITE, db2: STANDBY });
    expect(r.exitCode).toBe(3);
    expect(r.error).toMatchObject({ step: 'in-place-confirmed' });
    expect(r.error!.message).toContain('-p in_place=confirmed');
    const confirmed = await restore({ host: 'db1', in_place: 'confirmed' }, { db1: READ_WRITE, db2: STANDBY });
    expect(confirmed.exitCode).toBe(0);
  });

  it('refuses a restore onto the standby while the primary runs read-write, confirmed or not', async () => {
    const r = await restore({ host: 'db2', in_place: 'confirmed' }, { db1: READ_WRITE, db2: STANDBY });
    expect(r.exitCode).toBe(3);
    expect(r.error).toMatchObject({ step: 'no-other-primary' });
    expect(r.error!.message).toMatch(/^db1, runs read-write/);
    expect((await restore({ host: 'db2' }, { db1: STOPPED, db2: STANDBY })).exitCode).toBe(0);
  });

  it('refuses while a database host cannot be reached, until it is confirmed down', async () => {
    const r = await restore({ host: 'db2' }, { db2: STANDBY }, ['db1']);
    expect(r.exitCode).toBe(3);
    expect(r.error).toMatchObject({ step: 'unreachable' });
    expect(r.error!.message).toContain('-p down=db1');
    expect((await restore({ host: 'db2', down: 'db2' }, { db2: STANDBY }, ['db1'])).exitCode).toBe(3);
    expect((await restore({ host: 'db2', down: 'db1' }, { db2: STANDBY }, ['db1'])).exitCode).toBe(0);
    expect((await restore({ host: 'db2', down: 'db1,' }, { db2: STANDBY }, ['db1'])).exitCode).toBe(0);
  });
});
