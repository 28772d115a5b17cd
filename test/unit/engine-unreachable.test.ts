/**
 * `unreachable: tolerate` (issue 12, failover with a dead primary): a step may record a host its
 * transport cannot connect to instead of failing, and later steps see that in what it registered. Only
 * "cannot connect" counts (classified by the transport: PgplayError.unreachable); an authentication
 * failure, or the action's own failure, still fails the step. Engine unit tests over the fake transport.
 */
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { playbookErrors } from '../../src/load/playbook.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { RunEvent } from '../../src/engine/events.js';
import { fakeActions } from '../fixtures/fake-actions.js';
import { harness, results } from './support/engine-harness.js';

const stepResult = (events: RunEvent[], step: string, host: string) =>
  events.find((e): e is Extract<RunEvent, { type: 'step-result' }> => e.type === 'step-result' && e.step === step && e.host === host);

describe('unreachable: tolerate', () => {
  it('records an unreachable host (skipped, registers unreachable) and later steps decide on it; the run succeeds', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, ['db1']);
    const outcome = await h.run({
      steps: [
        { id: 'fence', hosts: 'db1', unreachable: 'tolerate', register: 'fence', run: { argv: ['stop'] } },
        // Only when the fence could not reach db1: the registered value says so.
        { id: 'impossible', hosts: 'db2', when: "default(hosts['db1'].registered.fence.unreachable, false)", run: { argv: ['note-impossible'] } },
        { id: 'fenced', hosts: 'db2', when: "not default(hosts['db1'].registered.fence.unreachable, false)", run: { argv: ['note-fenced'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['fence@db1=skipped', 'impossible@db2=changed', 'fenced@db2=skipped']);
    expect(stepResult(h.events, 'fence', 'db1')?.msg).toBe('host is unreachable (tolerated by the step): host db1 is unreachable');
    expect(outcome.recap.db1).toEqual({ ok: 0, changed: 0, skipped: 1, failed: 0, unreachable: 1 });
    expect(h.calls.filter((c) => c.argv?.[0] === 'stop')).toEqual([]);
  });

  it('without it an unreachable host fails the step, and the steps after it do not run', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, ['db1']);
    const outcome = await h.run({ steps: [{ id: 'fence', hosts: 'db1', run: { argv: ['stop'] } }, { id: 'next', hosts: 'db2', run: { argv: ['x'] } }] });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['fence@db1=failed']);
    expect(stepResult(h.events, 'fence', 'db1')?.error).toMatchObject({ code: 'TRANSPORT', unreachable: true });
  });

  it('an authentication failure is not unreachable: the step fails even with tolerate', async () => {
    const h = harness(['db1', 'db2']);
    // The first run creates the transports; the host then refuses the key.
    await h.run({ steps: [{ id: 'warm', hosts: 'all', run: { argv: ['true'] } }] });
    h.transports.get('db1')!.failure = new PgplayError({ code: 'TRANSPORT', message: 'authentication failed for root@db1', host: 'db1' });
    h.events.length = 0;
    const outcome = await h.run({ steps: [{ id: 'fence', hosts: 'db1', unreachable: 'tolerate', register: 'fence', run: { argv: ['stop'] } }] });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['fence@db1=failed']);
    expect(stepResult(h.events, 'fence', 'db1')?.msg).toContain('authentication failed for root@db1');
    expect(outcome.recap.db1).toMatchObject({ failed: 1 });
  });

  it("the action's own failure on a reachable host still fails the step", async () => {
    const h = harness(['db1'], (argv) => (argv[0] === 'stop' ? { exitCode: 1, stderr: 'pg_ctl: could not stop' } : {}));
    const outcome = await h.run({ steps: [{ id: 'fence', hosts: 'db1', unreachable: 'tolerate', run: { argv: ['stop'] } }] });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['fence@db1=failed']);
    expect(stepResult(h.events, 'fence', 'db1')?.msg).toContain('pg_ctl: could not stop');
  });

  it('a host that becomes unreachable during the run (its connection cannot be opened again) is tolerated too', async () => {
    const h = harness(['db1', 'db2'], (argv, _options, transport) => {
      // The machine dies right after this command: the next connection is refused.
      if (argv[0] === 'last-words') transport.unreachable = true;
      return {};
    });
    const outcome = await h.run({
      steps: [
        { id: 'before', hosts: 'db1', run: { argv: ['last-words'] } },
        { id: 'fence', hosts: 'db1', unreachable: 'tolerate', register: 'fence', run: { argv: ['stop'] } },
        { id: 'after', hosts: 'db2', when: "hosts['db1'].registered.fence.unreachable", run: { argv: ['x'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['before@db1=changed', 'fence@db1=skipped', 'after@db2=changed']);
  });
});

describe('unreachable in a playbook', () => {
  const FILE = join(import.meta.dirname, '..', 'fixtures', 'valid', 'nightly-backup.yml');
  const check = (text: string) =>
    playbookErrors(parseYaml(text, FILE), { actions: fakeActions }, []).map((e) => e.format().replace(FILE, basename(FILE)).split('\n')[0]);

  it('takes fail or tolerate on a step, and nothing else', () => {
    const step = (value: string) => `name: p\nsteps:\n  - id: s\n    hosts: primary\n    unreachable: ${value}\n    command: { argv: ['true'] }\n`;
    expect(check(step('tolerate'))).toEqual([]);
    expect(check(step('fail'))).toEqual([]);
    expect(check(step('ignore'))).toEqual(['nightly-backup.yml:5:18, step s: invalid value "ignore" for "unreachable" (expected one of fail, tolerate)']);
  });

  it('is refused on an include: the included steps decide for their own hosts', () => {
    const text = 'name: p\nsteps:\n  - id: inc\n    hosts: primary\n    unreachable: tolerate\n    include: { playbook: nightly-backup.yml }\n';
    expect(check(text)).toEqual([
      "nightly-backup.yml:5:5: step inc: unreachable applies to a step's action on its hosts, not to an include (expected unreachable: tolerate on the included steps that may meet an unreachable host)",
    ]);
  });
});
