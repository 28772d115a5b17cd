import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import type { RunEvent } from '../../src/engine/events.js';
import { runPlaybook, type RunRequest } from '../../src/app/run-playbook.js';
import { findRun, listRuns, stepResults } from '../../src/journal/reader.js';
import { lockPath, readLock, type LockInfo } from '../../src/lock/cluster-lock.js';
import { FakeTransport, type FakeExecHandler } from '../../src/transports/fake.js';

/**
 * runPlaybook with a state directory, on the fake transport: the journal, the lock, --resume and the
 * Ctrl-C grace period as the CLI drives them, with every command answered by the test.
 */
let dir: string;
let stateDir: string;
let playbookFile: string;
let inventoryFile: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-journal-run-'));
  stateDir = join(dir, 'state');
  playbookFile = join(dir, 'playbook.yml');
  inventoryFile = join(dir, 'inventory.yml');
  await writeFile(
    inventoryFile,
    [
      'cluster: main',
      'postgres: { version: 15 }',
      'connection: { transport: local }',
      'hosts:',
      '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }',
      '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db2, postgres: { port: 5433 } }',
      '',
    ].join('\n'),
  );
  await writeFile(
    playbookFile,
    [
      'name: journal-test',
      'params:',
      '  label: { type: string, default: nightly }',
      '  token: { type: string, secret: true, default: none }',
      'steps:',
      '  - id: prepare',
      '    hosts: all',
      '    command: { argv: [prepare, "{{params.label}}", "{{params.token}}"] }',
      '    register: prep',
      '    notify: [reload]',
      '  - id: apply',
      '    hosts: all',
      '    command: { argv: [apply, "{{prep.stdout}}"] }',
      '  - id: finish',
      '    hosts: all',
      '    command: { argv: [finish] }',
      'handlers:',
      '  reload: { hosts: all, command: { argv: [reload] } }',
      '',
    ].join('\n'),
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Rig {
  execs: string[];
  events: RunEvent[];
  warnings: string[];
  run(extra?: Partial<RunRequest>): ReturnType<typeof runPlaybook>;
}

function rig(handler: FakeExecHandler): Rig {
  const execs: string[] = [];
  const events: RunEvent[] = [];
  const warnings: string[] = [];
  return {
    execs,
    events,
    warnings,
    run(extra = {}) {
      events.length = 0;
      return runPlaybook({
        playbookFile,
        inventoryFile,
        params: {},
        check: false,
        diff: false,
        stateDir,
        onEvent: (e) => events.push(e),
        warn: (m) => warnings.push(m),
        createTransport: (host) =>
          new FakeTransport(host.name, (argv, options, t) => {
            execs.push(`${argv.join(' ')}@${t.hostName}`);
            return handler(argv, options, t);
          }),
        gatherFacts: async () => ({ reachable: true, pgdata_present: true, running: true, in_recovery: false }),
        ...extra,
      });
    },
  };
}

const statuses = (events: RunEvent[]) =>
  events.filter((e): e is Extract<RunEvent, { type: 'step-result' }> => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}`);

describe('a journaled run', () => {
  it('journals header, results with timings, registered values and the end; holds the lock only while running', async () => {
    let lockDuringRun: LockInfo | 'corrupt' | null = null;
    const r = rig((argv) => {
      if (argv[0] === 'apply') lockDuringRun = readLock(lockPath(stateDir, 'main'));
      return { stdout: argv[0] === 'prepare' ? 'prepared s3cret-token-value' : '' };
    });
    const outcome = await r.run({ params: { token: 's3cret-token-value' } });
    expect(outcome.exitCode).toBe(0);
    expect(lockDuringRun).toMatchObject({ runId: outcome.runId, pid: process.pid, playbook: playbookFile, cluster: 'main' });
    expect(existsSync(lockPath(stateDir, 'main'))).toBe(false);

    const run = findRun(stateDir, outcome.runId);
    expect(run.status).toBe('ok');
    expect(run.header).toMatchObject({
      runId: outcome.runId,
      playbook: playbookFile,
      inventory: inventoryFile,
      cluster: 'main',
      params: { label: 'nightly', token: '********' },
      check: false,
      resumeOf: null,
      pid: process.pid,
    });
    expect(run.header.playbookSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(stepResults(run).map((e) => `${e.step}@${e.host}=${e.status}`)).toEqual([
      'prepare@db1=changed', 'prepare@db2=changed', 'apply@db1=changed', 'apply@db2=changed',
      'finish@db1=changed', 'finish@db2=changed', 'reload@db1=changed', 'reload@db2=changed',
    ]);
    for (const e of stepResults(run)) {
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(Date.parse(e.time)).not.toBeNaN();
    }
    // What `register: prep` stored, redacted: the token a command echoed is masked in the journal.
    expect(run.registered.map((x) => [x.step, x.host, x.name, (x.value as { stdout: string }).stdout])).toEqual([
      ['prepare', 'db1', 'prep', 'prepared ********'],
      ['prepare', 'db2', 'prep', 'prepared ********'],
    ]);
    expect(JSON.stringify(run)).not.toContain('s3cret-token-value');
  });

  it('refuses a second run on a locked cluster (exit 3) without journaling it; a plan runs beside it', async () => {
    const r = rig(() => ({}));
    const { acquireClusterLock } = await import('../../src/lock/cluster-lock.js');
    const held = acquireClusterLock(stateDir, 'main', { runId: '20240101T030000-aaaaaa', playbook: '/pb/other.yml' });
    try {
      const err = await r.run().then(
        () => undefined,
        (e: unknown) => e as PgplayError,
      );
      expect(err?.exitCode).toBe(3);
      expect(err?.message).toMatch(/^cluster "main" is locked by run 20240101T030000-aaaaaa \(pid \d+ on .*, playbook \/pb\/other.yml, since /);
      expect(listRuns(stateDir).runs).toHaveLength(0);
      expect(r.execs).toEqual([]);

      // (From `finish` on: the plan of `apply` could not render what `prepare` would have registered.)
      const plan = await r.run({ check: true, from: 'finish' });
      expect(plan.exitCode).toBe(0);
      expect([r.events[0]?.type, r.events.at(-1)?.type]).toEqual(['run-start', 'run-end']);
      expect(findRun(stateDir, plan.runId).header.check).toBe(true);
    } finally {
      held.release();
    }
  });

  it('--resume skips what succeeded, gives later steps the registered values, owes the handlers, and journals the link', async () => {
    let failApplyOn: string | undefined = 'db2';
    const r = rig((argv, _o, t) => {
      if (argv[0] === 'apply' && t.hostName === failApplyOn) return { exitCode: 1, stderr: 'disk full' };
      return { stdout: argv[0] === 'prepare' ? `prep-${t.hostName}` : '' };
    });
    const first = await r.run({ params: { label: 'weekly' } });
    expect(first.exitCode).toBe(1);
    expect(statuses(r.events)).toEqual(['prepare@db1=changed', 'prepare@db2=changed', 'apply@db1=changed', 'apply@db2=failed']);
    expect(findRun(stateDir, first.runId).status).toBe('failed');

    failApplyOn = undefined;
    r.execs.length = 0;
    const resumed = await r.run({ resume: 'last' });
    expect(resumed.exitCode).toBe(0);
    expect(statuses(r.events)).toEqual([
      'prepare@db1=skipped', 'prepare@db2=skipped', 'apply@db1=skipped', 'apply@db2=changed',
      'finish@db1=changed', 'finish@db2=changed', 'reload@db1=changed', 'reload@db2=changed',
    ]);
    // The original params came back (label=weekly); apply saw what prepare registered in the first run.
    expect(r.execs).toEqual(['apply prep-db2@db2', 'finish@db1', 'finish@db2', 'reload@db1', 'reload@db2']);
    const skipped = r.events.find((e) => e.type === 'step-result' && e.step === 'prepare')!;
    expect(skipped).toMatchObject({ msg: `done in run ${first.runId}` });
    expect(r.warnings).toEqual([`resuming run ${first.runId}: 3 step/host pairs already done will be skipped`]);
    const journal = findRun(stateDir, resumed.runId);
    expect(journal.header).toMatchObject({ resumeOf: first.runId, params: { label: 'weekly', token: '********' } });

    const again = await r.run({ resume: 'last' }).catch((e: PgplayError) => e);
    expect(again).toBeInstanceOf(PgplayError);
    expect((again as PgplayError).message).toBe(`run ${resumed.runId} completed successfully; there is nothing to resume`);
  });

  it('--resume warns when a param changed: the finished steps keep what they did with the old value', async () => {
    const r = rig((argv) => ({ exitCode: argv[0] === 'apply' ? 1 : 0, stdout: 'x' }));
    const first = await r.run({ params: { label: 'weekly' } });
    r.warnings.length = 0;
    await r.run({ resume: 'last', params: { label: 'monthly' } });
    expect(r.warnings).toContain(`param label was "weekly" in run ${first.runId}, now "monthly": the steps that run finished keep what they did with the old value`);
  });

  it('a secret param is not kept: --resume asks for it again unless it has a default', async () => {
    await writeFile(playbookFile, ['name: s', 'params:', '  token: { type: string, secret: true }', 'steps:', '  - { id: a, hosts: db1, command: { argv: [a, "{{params.token}}"] } }', ''].join('\n'));
    const r = rig(() => ({ exitCode: 1 }));
    await r.run({ params: { token: 'hunter22' } });
    const err = await r.run({ resume: 'last' }).catch((e: PgplayError) => e);
    expect((err as PgplayError).exitCode).toBe(2);
    expect((err as PgplayError).format()).toMatch(/^--resume: secret param token of run \S+ is not kept in the journal \(expected -p token=\.\.\.\)$/);
    r.execs.length = 0;
    await r.run({ resume: 'last', params: { token: 'hunter22' } });
    expect(r.execs).toEqual(['a hunter22@db1']);
  });

  it('Ctrl-C: running steps finish within the grace period, no new step starts, the journal says interrupted', async () => {
    const controller = new AbortController();
    const r = rig(async (argv) => {
      if (argv[0] === 'prepare') {
        setTimeout(() => controller.abort(new PgplayError({ code: 'INTERRUPTED', message: 'interrupted by SIGINT' })), 20);
        await new Promise((res) => setTimeout(res, 200));
      }
      return { stdout: 'x' };
    });
    const outcome = await r.run({ signal: controller.signal, graceMs: 5000 });
    expect(outcome.exitCode).toBe(130);
    expect(outcome.status).toBe('interrupted');
    expect(statuses(r.events)).toEqual(['prepare@db1=changed', 'prepare@db2=changed']);
    expect(r.execs).toEqual(['prepare nightly none@db1', 'prepare nightly none@db2']);
    const run = findRun(stateDir, outcome.runId);
    expect(run.status).toBe('interrupted');
    expect(run.end!.exitCode).toBe(130);
    // Why, for whoever reads the journal later (an auditor, the next operator): what the CLI said.
    expect(run.end).toMatchObject({ interruptedBy: 'interrupted by SIGINT' });
    expect(run.end!.error).toBeUndefined();

    const resumed = await r.run({ resume: 'last' });
    expect(resumed.exitCode).toBe(0);
    expect(statuses(r.events).filter((s) => !s.endsWith('skipped'))).toEqual([
      'apply@db1=changed', 'apply@db2=changed', 'finish@db1=changed', 'finish@db2=changed', 'reload@db1=changed', 'reload@db2=changed',
    ]);
  });

  it('Ctrl-C: a step still running when the grace period ends is aborted', async () => {
    const controller = new AbortController();
    const r = rig(async (argv, options) => {
      if (argv[0] === 'prepare') {
        setTimeout(() => controller.abort(new PgplayError({ code: 'INTERRUPTED', message: 'interrupted by SIGINT' })), 20);
        // A step that only ends when it is told to stop.
        await new Promise<void>((res) => options.signal!.addEventListener('abort', () => res(), { once: true }));
        return { exitCode: 143, stderr: 'terminated' };
      }
      return {};
    });
    const started = Date.now();
    const outcome = await r.run({ signal: controller.signal, graceMs: 300 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(outcome.exitCode).toBe(130);
    expect(statuses(r.events)).toEqual(['prepare@db1=failed', 'prepare@db2=failed']);
    expect(findRun(stateDir, outcome.runId).status).toBe('interrupted');
    // The failure the interruption caused stays the run's error; what interrupted it is said beside it.
    expect(findRun(stateDir, outcome.runId).end).toMatchObject({ interruptedBy: 'interrupted by SIGINT', error: { step: 'prepare' } });
  });
});
