import { describe, expect, it } from 'vitest';
import { harness, results } from './support/engine-harness.js';

describe('engine with the fake transport', () => {
  it('runs steps in order, each step on all its hosts before the next starts', async () => {
    const h = harness(['db1', 'db2', 'db3'], () => ({ exitCode: 0 }), 20);
    const outcome = await h.run({
      steps: [
        { id: 'first', hosts: 'all', run: { argv: ['one'] } },
        { id: 'second', hosts: 'all', run: { argv: ['two'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    const execs = h.calls.filter((c) => c.kind === 'exec');
    const lastFirstEnd = Math.max(...execs.filter((c) => c.argv![0] === 'one').map((c) => c.end!));
    const firstSecondStart = Math.min(...execs.filter((c) => c.argv![0] === 'two').map((c) => c.start));
    expect(execs).toHaveLength(6);
    expect(firstSecondStart).toBeGreaterThanOrEqual(lastFirstEnd);
    expect(results(h.events)).toEqual([
      'first@db1=changed', 'first@db2=changed', 'first@db3=changed',
      'second@db1=changed', 'second@db2=changed', 'second@db3=changed',
    ]);
  });

  it('fans out over hosts in parallel, bounded by --forks', async () => {
    const maxInFlight = async (forks: number) => {
      let inFlight = 0;
      let peak = 0;
      const h = harness(['h1', 'h2', 'h3', 'h4', 'h5', 'h6'], async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
        return { exitCode: 0 };
      });
      await h.run({ steps: [{ id: 's', hosts: 'all', run: { argv: ['x'] } }] }, { forks });
      return peak;
    };
    expect(await maxInFlight(1)).toBe(1);
    expect(await maxInFlight(2)).toBe(2);
    expect(await maxInFlight(10)).toBe(6);
  });

  it('retries until the condition holds, with the attempt count reported', async () => {
    let n = 0;
    const h = harness(['db1'], () => ({ exitCode: 0, stdout: String(++n) }));
    const outcome = await h.run({
      steps: [{ id: 'poll', hosts: 'db1', run: { argv: ['count'] }, register: 'poll', until: "poll.stdout == '3'", retries: 5, delay: '10ms' }],
    });
    expect(outcome.exitCode).toBe(0);
    const result = h.events.find((e) => e.type === 'step-result')!;
    expect(result).toMatchObject({ status: 'changed', attempts: 3 });
  });

  it('fails when retries are exhausted and retries failing attempts', async () => {
    let n = 0;
    const h = harness(['db1'], () => ({ exitCode: ++n < 10 ? 1 : 0, stderr: 'not yet' }));
    const outcome = await h.run({ steps: [{ id: 'flaky', hosts: 'db1', run: { argv: ['x'] }, retries: 2, delay: 1 / 100 }] });
    expect(outcome.exitCode).toBe(1);
    const result = h.events.find((e) => e.type === 'step-result')!;
    expect(result).toMatchObject({ status: 'failed', attempts: 3, msg: 'exit 1: not yet' });
    expect(n).toBe(3);
  });

  it('runs a notified handler once, at the end, only on hosts that changed', async () => {
    const h = harness(['db1', 'db2']);
    h.transports.clear();
    const outcome = await h.run({
      steps: [
        { id: 'conf', hosts: 'db1', touch: { path: '/etc/a', content: 'x' }, notify: ['reload'] },
        { id: 'conf2', hosts: 'all', touch: { path: '/etc/b', content: 'y' }, notify: ['reload'] },
        { id: 'last', hosts: 'db2', run: { argv: ['after'] } },
      ],
      handlers: { reload: { hosts: 'all', run: { argv: ['reload'] } }, unused: { hosts: 'all', run: { argv: ['never'] } } },
    });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual([
      'conf@db1=changed',
      'conf2@db1=changed',
      'conf2@db2=changed',
      'last@db2=changed',
      'reload@db1=changed',
      'reload@db2=changed',
    ]);
    const reloads = h.calls.filter((c) => c.argv?.[0] === 'reload');
    expect(reloads.map((c) => c.host).sort()).toEqual(['db1', 'db2']);
    expect(h.calls.some((c) => c.argv?.[0] === 'never')).toBe(false);
  });

  it('does not run handlers when nothing changed (second run is idempotent)', async () => {
    const h = harness(['db1']);
    const playbook = {
      steps: [{ id: 'conf', hosts: 'db1', touch: { path: '/etc/a', content: 'x' }, notify: ['reload'] }],
      handlers: { reload: { hosts: 'db1', run: { argv: ['reload'] } } },
    };
    await h.run(playbook);
    expect(results(h.events)).toEqual(['conf@db1=changed', 'reload@db1=changed']);
    h.events.length = 0;
    const second = await h.run(playbook);
    expect(second.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['conf@db1=ok']);
    expect(second.recap.db1).toMatchObject({ ok: 1, changed: 0 });
    expect(h.calls.filter((c) => c.argv?.[0] === 'reload')).toHaveLength(1);
  });

  it('check mode calls only check: nothing is executed or written, changes are reported as would-change', async () => {
    const h = harness(['db1', 'db2']);
    const outcome = await h.run(
      {
        steps: [
          { id: 'conf', hosts: 'all', touch: { path: '/etc/a', content: 'x' }, notify: ['reload'] },
          { id: 'cmd', hosts: 'all', run: { argv: ['rm', '-rf', '/'] } },
        ],
        handlers: { reload: { hosts: 'all', run: { argv: ['reload'] } } },
      },
      { check: true },
    );
    expect(outcome.exitCode).toBe(0);
    expect(h.calls.filter((c) => c.kind === 'exec' || c.kind === 'writeFile')).toEqual([]);
    expect(results(h.events)).toEqual([
      'conf@db1=changed',
      'conf@db2=changed',
      'cmd@db1=changed',
      'cmd@db2=changed',
      'reload@db1=changed',
      'reload@db2=changed',
    ]);
    expect(h.events.find((e) => e.type === 'step-result' && e.step === 'cmd')).toMatchObject({ msg: 'would run' });
  });

  it('skips a host where `when` is false and stops the run after a failed step', async () => {
    const h = harness(['db1', 'db2'], (argv) => ({ exitCode: argv[0] === 'bad' ? 2 : 0, stderr: 'boom' }));
    const outcome = await h.run({
      steps: [
        { id: 'only-primary', hosts: 'all', when: "host.role == 'primary'", run: { argv: ['ok'] } },
        { id: 'breaks', hosts: 'all', run: { argv: ['bad'] } },
        { id: 'never', hosts: 'all', run: { argv: ['ok'] } },
      ],
    });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual([
      'only-primary@db1=changed',
      'only-primary@db2=skipped',
      'breaks@db1=failed',
      'breaks@db2=failed',
    ]);
    const end = h.events.at(-1)!;
    expect(end).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'breaks', host: 'db1', message: 'exit 2: boom' } });
    expect(outcome.recap.db2).toEqual({ ok: 0, changed: 0, skipped: 1, failed: 1, unreachable: 0 });
  });

  it('continues past a failure with ignore_errors', async () => {
    const h = harness(['db1'], (argv) => ({ exitCode: argv[0] === 'bad' ? 1 : 0 }));
    const outcome = await h.run({
      steps: [
        { id: 'breaks', hosts: 'db1', run: { argv: ['bad'] }, ignore_errors: true },
        { id: 'next', hosts: 'db1', run: { argv: ['ok'] } },
      ],
    });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['breaks@db1=failed', 'next@db1=changed']);
  });

  it('passes registered results to later steps through templates', async () => {
    const h = harness(['db1'], (argv) => ({ exitCode: 0, stdout: argv[0] === 'lsn' ? '0/3000060' : '' }));
    await h.run({
      steps: [
        { id: 'read', hosts: 'db1', run: { argv: ['lsn'] }, register: 'pos' },
        { id: 'write', hosts: 'db1', touch: { path: '/tmp/lsn', content: 'at {{pos.stdout}} rc={{pos.rc}}' } },
      ],
    });
    expect(h.transports.get('db1')!.files.get('/tmp/lsn')!.data.toString()).toBe('at 0/3000060 rc=0');
  });

  it('honours --tags (and always), and --from', async () => {
    const h = harness(['db1']);
    await h.run(
      {
        steps: [
          { id: 'a', hosts: 'db1', run: { argv: ['a'] }, tags: ['backup'] },
          { id: 'b', hosts: 'db1', run: { argv: ['b'] }, tags: ['restore'] },
          { id: 'c', hosts: 'db1', run: { argv: ['c'] }, tags: ['always'] },
        ],
      },
      { tags: ['restore'] },
    );
    expect(results(h.events)).toEqual(['b@db1=changed', 'c@db1=changed']);
    const h2 = harness(['db1']);
    await h2.run({ steps: [{ id: 'a', hosts: 'db1', run: { argv: ['a'] } }, { id: 'b', hosts: 'db1', run: { argv: ['b'] } }] }, { from: 'b' });
    expect(results(h2.events)).toEqual(['b@db1=changed']);
  });

  it('fails a step that exceeds its timeout, naming the duration', async () => {
    const h = harness(['db1'], () => new Promise(() => undefined));
    const outcome = await h.run({ steps: [{ id: 'hangs', hosts: 'db1', run: { argv: ['sleep'] }, timeout: '50ms' }] });
    expect(outcome.exitCode).toBe(1);
    expect(h.events.find((e) => e.type === 'step-result')).toMatchObject({ status: 'failed', msg: 'timed out after 50ms', error: { code: 'TIMEOUT' } });
  });

  it('a guard refusal exits 3 and is not retried; an unconfirmed destructive step is refused', async () => {
    const h = harness(['db1']);
    const refused = await h.run({ steps: [{ id: 'g', hosts: 'db1', guarded: { refuse: true }, retries: 3, delay: 0 }] });
    expect(refused.exitCode).toBe(3);
    expect(h.events.find((e) => e.type === 'step-result')).toMatchObject({ attempts: 1, msg: 'refusing: target is the live primary' });

    const h2 = harness(['db1']);
    const unconfirmed = await h2.run({ steps: [{ id: 'wipe', hosts: 'db1', guarded: { refuse: false } }] });
    expect(unconfirmed.exitCode).toBe(3);
    expect(h2.events.at(-1)).toMatchObject({ status: 'refused', error: { code: 'GUARD', hint: 'no terminal to ask; rerun with --yes to confirm destructive steps' } });

    const h3 = harness(['db1']);
    expect((await h3.run({ steps: [{ id: 'wipe', hosts: 'db1', guarded: { refuse: false } }] }, { yes: true })).exitCode).toBe(0);
    const h4 = harness(['db1']);
    const questions: string[] = [];
    const asked = await h4.run({ steps: [{ id: 'wipe', hosts: 'db1', guarded: { refuse: false }, confirm: 'This wipes PGDATA' }] }, {}, {
      ask: async (q) => (questions.push(q), true),
    });
    expect(asked.exitCode).toBe(0);
    expect(questions).toEqual(['This wipes PGDATA\nProceed with step wipe on db1?']);
  });

  it('an aborted run stops launching steps and exits 130', async () => {
    const controller = new AbortController();
    const h = harness(['db1'], async (argv) => {
      if (argv[0] === 'first') controller.abort();
      return { exitCode: 0 };
    });
    const outcome = await h.run(
      { steps: [{ id: 'first', hosts: 'db1', run: { argv: ['first'] } }, { id: 'second', hosts: 'db1', run: { argv: ['second'] } }] },
      {},
      { signal: controller.signal },
    );
    expect(outcome.exitCode).toBe(130);
    expect(results(h.events)).toEqual(['first@db1=changed']);
  });

  it('an unreachable host fails its steps by name while other hosts are still reported', async () => {
    const h = harness(['db1', 'db2'], undefined, 0, ['db2']);
    const outcome = await h.run({ steps: [{ id: 's', hosts: 'all', run: { argv: ['x'] } }] });
    expect(outcome.exitCode).toBe(1);
    expect(results(h.events)).toEqual(['s@db1=changed', 's@db2=failed']);
    expect(h.events.find((e) => e.type === 'step-result' && e.host === 'db2')).toMatchObject({
      msg: 'host is unreachable: host db2 is unreachable',
      error: { code: 'TRANSPORT' },
    });
    expect(outcome.recap.db2).toMatchObject({ failed: 1, unreachable: 1 });
  });
});
