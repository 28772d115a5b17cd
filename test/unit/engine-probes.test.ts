import { describe, expect, it } from 'vitest';
import { postgresAction } from '../../src/actions/postgres.js';
import { loadAllActions } from '../../src/actions/registry.js';
import { sqlAction } from '../../src/actions/sql.js';
import type { Client } from 'pg';
import { EventEmitter } from 'node:events';
import { IDENTITY_HEADER } from '../../src/postgres/identity.js';
import { POSTMASTER_WATCH_SCRIPT } from '../../src/postgres/postmaster-watch.js';
import { mergeFacts, type HostFacts } from '../../src/model/facts.js';
import type { FakeExecHandler } from '../../src/transports/fake.js';
import { harness, results } from './support/engine-harness.js';

const actions = await loadAllActions();

/*
 * One probe per fact per step (issue 14): the postgres action reads the server's state once in check,
 * apply acts on it (unless a human was asked in between, or a guard decides on it), and after the change
 * the engine reads again only the facts the action declares it changed, taking them from apply's own
 * read after the change when it made one. Counted on the fake transport, with the real facts script.
 */

/** A fake PostgreSQL behind the fake transport: answers the facts script and pg_ctl, and logs what ran. */
function fakeServer(initial: { running: boolean; inRecovery: boolean }) {
  const state = { ...initial };
  const ran: string[] = [];
  const handler: FakeExecHandler = (argv, _options, transport) => {
    transport.files.set('/pg/db1/PG_VERSION', { data: Buffer.from('15\n'), mode: 0o600, owner: 'postgres', group: 'postgres' });
    const script = argv[0] === '/bin/sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
    if (script.includes('pgplay-facts 1')) {
      // Which parts of the facts script ran: host (name, user, bindir), server (pg_ctl status, SQL), paths.
      const parts = ['pgdata', ...(script.includes('bindir.checked') ? ['host'] : []), ...(script.includes('pg_ctl_status') ? ['server'] : []), ...(script.includes('paths.end') ? ['paths'] : [])];
      ran.push(`facts[${parts.join(',')}]`);
      return { stdout: factsOutput(state) };
    }
    if (argv[3] === 'pgplay-identity') {
      // The identity guard's read of PGDATA (a stop is guarded by what the directory is).
      ran.push('identity');
      return { stdout: `${IDENTITY_HEADER}\n1.exists=1\n1.directory=1\n1.key=boot:1:2\n1.real=/pg/db1\n1.control=1\n1.control.system_identifier=7000000000000000001\nend=1\n` };
    }
    const pgCtl = argv.indexOf('/usr/lib/postgresql/15/bin/pg_ctl');
    if (pgCtl >= 0) {
      const verb = argv[pgCtl + 1]!;
      ran.push(`pg_ctl ${verb}`);
      if (verb === 'start' || verb === 'restart') state.running = true;
      if (verb === 'stop') state.running = false;
      if (verb === 'status') return { exitCode: state.running ? 0 : 3 };
    }
    return { exitCode: 0 };
  };
  return { state, ran, handler };
}

function factsOutput(s: { running: boolean; inRecovery: boolean }): string {
  const lines = ['pgplay-facts 1', 'pgdata_dir=present', 'pg_version_file=15', 'control.system_identifier=7000000000000000001', 'control.timeline=1'];
  lines.push(`control.state=${s.running ? (s.inRecovery ? 'in archive recovery' : 'in production') : 'shut down'}`);
  lines.push(`pg_ctl_status=${s.running ? 0 : 3}`, `running=${s.running ? 1 : 0}`);
  if (s.running) lines.push('pg_ctl_pid=4242', 'sql.version_num=150010', `sql.in_recovery=${s.inRecovery}`, 'sql.system_identifier=7000000000000000001', 'sql.timeline=1');
  lines.push('end=1', 'paths.end=1');
  return lines.join('\n') + '\n';
}

const realPostgres = (handler: FakeExecHandler, role: 'primary' | 'standby' | 'drill' = 'drill') =>
  harness(['db1'], handler, 0, [], undefined, {
    actions: [postgresAction],
    realFacts: true,
    // A drill copy: the one-primary invariant (guards.ts), which reads every server before and after a
    // start, does not watch it, so what is counted here is the step's own reading.
    configure: (h) => void (h.role = role),
  });

describe('one probe per fact per step', () => {
  it('a pg_ctl start: the state is probed once in check, not again in apply, and the refresh is the read after the start', async () => {
    const server = fakeServer({ running: false, inRecovery: true });
    const h = realPostgres(server.handler);
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db1', postgres: { state: 'started' } }] });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['start@db1=changed']);
    // The gather at the start of the run; the check's probe; pg_ctl start; the state after it, which is
    // also what the engine keeps as the host's facts (no second read by the engine).
    expect(server.ran).toEqual(['facts[pgdata,host,server,paths]', 'facts[pgdata,server]', 'pg_ctl start', 'facts[pgdata,server]']);
  });

  it('a stop: the refresh reads only the declared facts (the data directory and the server), not the host nor the server paths', async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    const h = realPostgres(server.handler);
    const outcome = await h.run({
      steps: [
        { id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } },
        // The facts the next step sees are the refreshed ones: the server is down.
        { id: 'after', hosts: 'db1', when: 'not facts.running and facts.cluster_state == "shut down"', run: { argv: ['true'] } },
      ],
    });
    expect(outcome.error?.message).toBeUndefined();
    expect(results(h.events)).toEqual(['stop@db1=changed', 'after@db1=changed']);
    // A stop decides on what it finds (guards: a primary is not stopped, nor another host's PGDATA):
    // check reads the server and the directory's identity (a standby's, beside the probe) and guards on
    // them; apply acts on that read, moments old in the same attempt, and reads neither again.
    expect(server.ran).toEqual([
      'facts[pgdata,host,server,paths]',
      ...['identity', 'facts[pgdata,server]'],
      'pg_ctl stop',
      'facts[pgdata,server]',
    ]);
  });

  it("a standby's stop reads its directory's identity beside its probe of the server, not after it", async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    let identityAsked!: () => void;
    const identityStarted = new Promise<void>((resolve) => (identityAsked = resolve));
    let probes = 0;
    const handler: FakeExecHandler = async (argv, options, transport) => {
      if (argv[3] === 'pgplay-identity') identityAsked();
      const script = argv[0] === '/bin/sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
      // The check's probe (the second facts read) answers only once the identity read has gone out.
      if (script.includes('pgplay-facts 1') && ++probes === 2) {
        await Promise.race([identityStarted, new Promise((_, reject) => setTimeout(() => reject(new Error('the identity was read after the probe')), 2000))]);
      }
      return server.handler(argv, options, transport);
    };
    const h = realPostgres(handler, 'standby');
    const outcome = await h.run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(results(h.events)).toEqual(['stop@db1=changed']);
    expect(server.ran).toEqual(['facts[pgdata,host,server,paths]', 'identity', 'facts[pgdata,server]', 'pg_ctl stop', 'facts[pgdata,server]']);
  });

  it('a stop whose probe finds a primary guards as before: the identity read beside the probe does not stand for the one a primary needs', async () => {
    // The run's facts said standby (so the identity went out beside the probe), but the server is a
    // primary by the time of the probe: refused (no allow_primary) before the stop, as before.
    const server = fakeServer({ running: true, inRecovery: true });
    let probes = 0;
    const handler: FakeExecHandler = (argv, options, transport) => {
      const script = argv[0] === '/bin/sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
      if (script.includes('pgplay-facts 1') && ++probes === 2) server.state.inRecovery = false;
      return server.handler(argv, options, transport);
    };
    const refused = await realPostgres(handler, 'standby').run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
    expect(refused.exitCode).toBe(3);
    expect(refused.error!.message).toContain('it is a running primary');
    expect(server.state.running).toBe(true);
    expect(server.ran).not.toContain('pg_ctl stop');
  });

  /** The fake server whose identity read (the guard's) cannot tell what the directory is; `primaryAtProbe`: the check's probe finds it read-write. */
  const unreadableIdentity = (primaryAtProbe: boolean) => {
    const server = fakeServer({ running: true, inRecovery: true });
    let probes = 0;
    const handler: FakeExecHandler = (argv, options, transport) => {
      if (argv[3] === 'pgplay-identity') {
        server.ran.push('identity');
        return { exitCode: 1, stderr: 'Permission denied' };
      }
      const script = argv[0] === '/bin/sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
      if (primaryAtProbe && script.includes('pgplay-facts 1') && ++probes === 2) server.state.inRecovery = false;
      return server.handler(argv, options, transport);
    };
    return { server, handler };
  };

  it("a standby's stop whose identity read beside the probe refuses is refused with the guard's reason (exit 3), nothing stopped", async () => {
    const { server, handler } = unreadableIdentity(false);
    const refused = await realPostgres(handler, 'standby').run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
    expect(refused.exitCode).toBe(3);
    expect(refused.error!.message).toContain('refusing to stop the server of /pg/db1 on db1: cannot tell what it is');
    expect(server.ran).not.toContain('pg_ctl stop');
    expect(server.state.running).toBe(true);
  });

  it('an identity read beside the probe that refused does not count where the probe finds a primary: refused as a primary, the run ends as it should', async () => {
    // The refusal of the read that went out beside the probe must neither stand for the primary's guard
    // nor be left unhandled (an unhandled rejection ends the process, exit 1, instead of the run's exit 3).
    const { server, handler } = unreadableIdentity(true);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const refused = await realPostgres(handler, 'standby').run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
      expect(refused.exitCode).toBe(3);
      expect(refused.error!.message).toContain('refusing to stop db1: it is a running primary');
      expect(server.ran).toContain('identity');
      expect(server.ran).not.toContain('pg_ctl stop');
      // Node reports an unhandled rejection after the microtasks of the turn it happened in.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a stop that asked a human reads the server and the directory again, and guards again, before it acts', async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    const h = realPostgres(server.handler);
    const questions: string[] = [];
    const outcome = await h.run(
      // allow_primary makes the stop destructive: it asks.
      { steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped', allow_primary: true } }] },
      {},
      { ask: async (q) => (questions.push(q), true) },
    );
    expect(outcome.error?.message).toBeUndefined();
    expect(questions).toHaveLength(1);
    expect(server.ran).toEqual([
      'facts[pgdata,host,server,paths]',
      ...['identity', 'facts[pgdata,server]'],
      ...['identity', 'facts[pgdata,server]'],
      'pg_ctl stop',
      'facts[pgdata,server]',
    ]);
  });

  it('a stop whose check found a primary is refused before anything else runs; the same step under --yes reads once', async () => {
    const primary = fakeServer({ running: true, inRecovery: false });
    const refused = await realPostgres(primary.handler).run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
    expect(refused.exitCode).toBe(3);
    expect(primary.ran).toEqual(['facts[pgdata,host,server,paths]', 'facts[pgdata,server]']);
    expect(primary.state.running).toBe(true);

    const confirmed = fakeServer({ running: true, inRecovery: true });
    const h = realPostgres(confirmed.handler);
    const outcome = await h.run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped', allow_primary: true } }] }, { yes: true });
    expect(outcome.exitCode).toBe(0);
    expect(confirmed.ran).toEqual(['facts[pgdata,host,server,paths]', 'identity', 'facts[pgdata,server]', 'pg_ctl stop', 'facts[pgdata,server]']);
  });

  it('a restart that asked a human reads the state again before acting: a confirmation is time in which anything may change', async () => {
    const server = fakeServer({ running: true, inRecovery: false });
    const h = realPostgres(server.handler);
    const questions: string[] = [];
    const outcome = await h.run(
      { steps: [{ id: 'restart', hosts: 'db1', postgres: { state: 'restarted', reason: 'test' } }] },
      {},
      { ask: async (q) => (questions.push(q), true) },
    );
    expect(outcome.exitCode).toBe(0);
    expect(questions).toHaveLength(1);
    expect(server.ran.filter((r) => r !== 'facts[pgdata,host,server,paths]')).toEqual(['facts[pgdata,server]', 'facts[pgdata,server]', 'pg_ctl restart', 'facts[pgdata,server]']);
  });

  it('a pg_ctl start says its change is over once pg_ctl returns: the other servers are read beside its probe of the server it started', async () => {
    // db1 the primary (running), db2 a standby to start. The probe after db2's start answers only once the
    // one-primary invariant's read of db1 after the change has begun: read after the step, it never would.
    const db1 = fakeServer({ running: true, inRecovery: false });
    const db2 = fakeServer({ running: false, inRecovery: true });
    const reads = { db1: 0, db2: 0 };
    let db1ReadAfter!: () => void;
    const db1Read = new Promise<void>((resolve) => (db1ReadAfter = resolve));
    const handler: FakeExecHandler = async (argv, options, transport) => {
      const name = transport.hostName as 'db1' | 'db2';
      const server = name === 'db1' ? db1 : db2;
      const script = argv[0] === '/bin/sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
      if (script.includes('pgplay-facts 1')) {
        const n = ++reads[name];
        // The run's facts, the invariant's read before the step, then the read after the change.
        if (name === 'db1' && n === 3) db1ReadAfter();
        if (name === 'db2' && n === 3) {
          await Promise.race([db1Read, new Promise((_, reject) => setTimeout(() => reject(new Error('db1 was not read beside the probe')), 2000))]);
        }
        return { stdout: factsOutput(server.state) };
      }
      return server.handler(argv, options, transport);
    };
    const h = harness(['db1', 'db2'], handler, 0, [], undefined, { actions: [postgresAction], realFacts: true });
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db2', postgres: { state: 'started' } }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(results(h.events)).toEqual(['start@db2=changed']);
    expect(db2.ran).toContain('pg_ctl start');
    // db1 read once after the change, not again after the step; db2's probe is its read after.
    expect(reads).toEqual({ db1: 3, db2: 3 });
  });

  it('a start on a watched server: check takes the invariant\'s read before the step; a start that changed nothing reads nothing after it', async () => {
    // A standby: the one-primary invariant (guards.ts) reads it before a step that can start it.
    const running = fakeServer({ running: true, inRecovery: true });
    const h = realPostgres(running.handler, 'standby');
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db1', postgres: { state: 'started' } }] });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['start@db1=ok']);
    // The gather at the start of the run; the invariant's read before the step, which is also the
    // check's: no probe of its own, and no read after a step that started nothing.
    expect(running.ran).toEqual(['facts[pgdata,host,server,paths]', 'facts[pgdata,server]']);

    const stopped = fakeServer({ running: false, inRecovery: true });
    const started = await realPostgres(stopped.handler, 'standby').run({ steps: [{ id: 'start', hosts: 'db1', postgres: { state: 'started' } }] });
    expect(started.exitCode).toBe(0);
    // A start that did start: apply's read after it, kept as the host's facts, is also the invariant's read
    // after the step (server-reads.ts): the server is not read twice in a row.
    expect(stopped.ran).toEqual(['facts[pgdata,host,server,paths]', 'facts[pgdata,server]', 'pg_ctl start', 'facts[pgdata,server]']);
  });

  it('a start that failed is read after (a failure may follow a change), and its retry probes afresh', async () => {
    const server = fakeServer({ running: false, inRecovery: true });
    const failing: FakeExecHandler = (argv, options, transport) => {
      if (argv.includes('/usr/lib/postgresql/15/bin/pg_ctl') && argv.includes('start')) {
        server.ran.push('pg_ctl start (fails)');
        return { exitCode: 1, stderr: 'could not start server' };
      }
      return server.handler(argv, options, transport);
    };
    const h = realPostgres(failing, 'standby');
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db1', retries: 1, delay: 0, postgres: { state: 'started' } }] });
    expect(outcome.exitCode).not.toBe(0);
    const reads = server.ran.filter((r) => r !== 'facts[pgdata,host,server,paths]');
    // Before the step (the first attempt's check); the second attempt's own probe; the read after the failed step.
    expect(reads.filter((r) => r === 'pg_ctl start (fails)')).toHaveLength(2);
    expect(reads[0]).toBe('facts[pgdata,server]');
    expect(reads.indexOf('facts[pgdata,server]', 1)).toBeGreaterThan(reads.indexOf('pg_ctl start (fails)'));
    expect(reads.indexOf('facts[pgdata,server]', 1)).toBeLessThan(reads.lastIndexOf('pg_ctl start (fails)'));
    expect(reads.at(-1)).toBe('facts[pgdata,server]');
  });

  /** Resolves once `seen` has happened; rejects (failing the fake command, and the test) after 2 s. */
  const within2s = (seen: Promise<unknown>, what: string) =>
    Promise.race([seen, new Promise((_, reject) => setTimeout(() => reject(new Error(what)), 2000))]);
  const isWatcher = (argv: string[]) => argv[0] === 'perl' && argv[2] === POSTMASTER_WATCH_SCRIPT;
  const isFacts = (argv: string[]) => argv[0] === '/bin/sh' && argv[1] === '-c' && (argv[2] ?? '').includes('pgplay-facts 1');
  const isPgCtl = (argv: string[], verb: string) => argv.includes('/usr/lib/postgresql/15/bin/pg_ctl') && argv.includes(verb);

  /**
   * A host where pg_ctl `verb` returns (as pg_ctl -w does, at its next look) only once the read after it has
   * begun, and whose watcher reports `report` a moment after pg_ctl began, the server then `running`.
   */
  function seenBeforePgCtl(server: ReturnType<typeof fakeServer>, verb: 'start' | 'stop', report: string, running: boolean) {
    const seen = { order: [] as string[], watched: undefined as { argv: string[]; become?: string } | undefined, reads: 0 };
    let pgCtlBegun!: () => void;
    const pgCtlRunning = new Promise<void>((resolve) => (pgCtlBegun = resolve));
    let readBegun!: () => void;
    const readAfter = new Promise<void>((resolve) => (readBegun = resolve));
    const handler: FakeExecHandler = async (argv, options, transport) => {
      if (isWatcher(argv)) {
        seen.watched = { argv: argv.slice(4), become: options.become };
        await pgCtlRunning;
        await new Promise((resolve) => setTimeout(resolve, 30));
        server.state.running = running;
        seen.order.push('watcher reports');
        return { stdout: report };
      }
      // The run's facts, the read before the step (the check's), then the read after the change.
      if (isFacts(argv) && ++seen.reads === 3) {
        seen.order.push('read after');
        readBegun();
      }
      if (isPgCtl(argv, verb)) {
        seen.order.push(`pg_ctl ${verb}`);
        pgCtlBegun();
        await within2s(readAfter, `the server was read only after pg_ctl ${verb} returned`);
        seen.order.push('pg_ctl returned');
        return { exitCode: 0 };
      }
      return server.handler(argv, options, transport);
    };
    return { seen, handler };
  }

  it('a pg_ctl start: the read of the server it started begins once a watcher on the host sees it up, while pg_ctl still waits to notice', async () => {
    const { seen, handler } = seenBeforePgCtl(fakeServer({ running: false, inRecovery: true }), 'start', 'ready 4242 ready\n', true);
    const h = realPostgres(handler, 'standby');
    const outcome = await h.run({ steps: [{ id: 'start', hosts: 'db1', postgres: { state: 'started' } }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(results(h.events)).toEqual(['start@db1=changed']);
    expect(seen.order).toEqual(['pg_ctl start', 'watcher reports', 'read after', 'pg_ctl returned']);
    // As the PGDATA's owner, pg_ctl's own limit (-t), no postmaster excepted (nothing ran before the start).
    expect(seen.watched).toEqual({ argv: ['up', '/pg/db1/postmaster.pid', '0', '60'], become: 'postgres' });
    // Still one read after the start: the one that began once the server was up.
    expect(seen.reads).toBe(3);
    expect(h.events.some((e) => e.type === 'log' && e.line === 'the server is up (postmaster 4242, status ready); pg_ctl has yet to notice')).toBe(true);
  });

  it('a start whose watcher sees nothing reads the server once pg_ctl returns; a watcher still watching then is stopped', async () => {
    for (const watcher of ['gives up', 'watches on'] as const) {
      const server = fakeServer({ running: false, inRecovery: true });
      const order: string[] = [];
      let reads = 0;
      const handler: FakeExecHandler = async (argv, options, transport) => {
        if (isWatcher(argv)) {
          if (watcher === 'gives up') return { exitCode: 1 };
          // Until it is stopped (the fake transport passes the signal on; a real one kills the process).
          await within2s(new Promise((resolve) => options.signal?.addEventListener('abort', resolve)), 'the watcher was not stopped');
          order.push('watcher stopped');
          return { exitCode: 143 };
        }
        if (isFacts(argv) && ++reads === 3) order.push('read after');
        if (isPgCtl(argv, 'start')) {
          server.state.running = true;
          await new Promise((resolve) => setTimeout(resolve, 20));
          order.push('pg_ctl returned');
          return { exitCode: 0 };
        }
        return server.handler(argv, options, transport);
      };
      const outcome = await realPostgres(handler, 'standby').run({ steps: [{ id: 'start', hosts: 'db1', postgres: { state: 'started' } }] });
      expect(outcome.exitCode).toBe(0);
      expect(order).toEqual(watcher === 'gives up' ? ['pg_ctl returned', 'read after'] : ['pg_ctl returned', 'watcher stopped', 'read after']);
    }
  });

  it("a stop: the read of the stopped server begins once its postmaster.pid is gone, while pg_ctl still waits; it is the step's read after", async () => {
    const { seen, handler } = seenBeforePgCtl(fakeServer({ running: true, inRecovery: true }), 'stop', 'gone\n', false);
    const h = realPostgres(handler);
    const outcome = await h.run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
    expect(outcome.error?.message).toBeUndefined();
    expect(results(h.events)).toEqual(['stop@db1=changed']);
    expect(seen.order).toEqual(['pg_ctl stop', 'watcher reports', 'read after', 'pg_ctl returned']);
    expect(seen.watched).toEqual({ argv: ['gone', '/pg/db1/postmaster.pid', '0', '60'], become: 'postgres' });
    // That read is the step's read after the change: the engine does not read the server again.
    expect(seen.reads).toBe(3);
    expect(h.events.some((e) => e.type === 'log' && e.line === 'the server is gone (postmaster.pid removed); pg_ctl has yet to notice')).toBe(true);
  });

  it("a stop's early read stands only where pg_ctl succeeds and the read shows the server stopped; else the engine reads after the step", async () => {
    for (const kind of ['pg_ctl fails', 'the read fails'] as const) {
      const server = fakeServer({ running: true, inRecovery: true });
      const order: string[] = [];
      let reads = 0;
      const handler: FakeExecHandler = async (argv, options, transport) => {
        if (isWatcher(argv)) {
          order.push('watcher reports');
          return { stdout: 'gone\n' };
        }
        if (isFacts(argv)) {
          reads++;
          if (reads === 3) order.push('early read');
          if (reads === 4) order.push('read after the step');
          // The early read's script fails (its host went away for a moment).
          if (reads === 3 && kind === 'the read fails') return { exitCode: 255, stderr: 'connection lost' };
        }
        if (isPgCtl(argv, 'stop')) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          order.push(kind === 'pg_ctl fails' ? 'pg_ctl stop failed' : 'pg_ctl stop returned');
          if (kind === 'pg_ctl fails') return { exitCode: 1, stderr: 'pg_ctl: server does not shut down' };
          server.state.running = false;
          return { exitCode: 0 };
        }
        return server.handler(argv, options, transport);
      };
      const h = realPostgres(handler);
      const outcome = await h.run({ steps: [{ id: 'stop', hosts: 'db1', postgres: { state: 'stopped' } }] });
      if (kind === 'pg_ctl fails') {
        // pg_ctl's verdict, once the early read had ended; nothing of that read is kept (a stop that failed
        // leaves the facts as the engine had them, as before).
        expect(results(h.events)).toEqual(['stop@db1=failed']);
        expect(outcome.error?.message).toContain('pg_ctl stop on db1 failed');
        expect(order).toEqual(['watcher reports', 'early read', 'pg_ctl stop failed']);
      } else {
        // pg_ctl succeeded: the step did too, and the engine read the server after it as without the watcher.
        expect(outcome.error?.message).toBeUndefined();
        expect(results(h.events)).toEqual(['stop@db1=changed']);
        expect(order).toEqual(['watcher reports', 'early read', 'pg_ctl stop returned', 'read after the step']);
      }
    }
  });

  it("a restart's watcher does not take the postmaster it replaces for the new one; pg_ctl's failure fails the step whatever the watcher saw", async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    let watched: string[] = [];
    const order: string[] = [];
    let reads = 0;
    const handler: FakeExecHandler = async (argv, options, transport) => {
      if (isWatcher(argv)) {
        watched = argv.slice(4);
        order.push('watcher: up');
        return { stdout: 'ready 4343 ready\n' };
      }
      // The run's facts, the invariant's read before the step, then the read the watcher brought forward.
      if (isFacts(argv) && ++reads === 3) order.push('read after');
      if (isPgCtl(argv, 'restart')) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        order.push('pg_ctl restart failed');
        return { exitCode: 1, stderr: 'pg_ctl: could not start server' };
      }
      return server.handler(argv, options, transport);
    };
    const h = realPostgres(handler, 'standby');
    const outcome = await h.run({ steps: [{ id: 'restart', hosts: 'db1', postgres: { state: 'restarted' } }] });
    // The running postmaster (facts: pid 4242) is not the one the restart waits for.
    expect(watched).toEqual(['up', '/pg/db1/postmaster.pid', '4242', '60']);
    // The read began on the watcher's word and ended before the step failed on pg_ctl's.
    expect(order.slice(0, 3)).toEqual(['watcher: up', 'read after', 'pg_ctl restart failed']);
    expect(outcome.exitCode).not.toBe(0);
    expect(results(h.events)).toEqual(['restart@db1=failed']);
    expect(outcome.error?.message).toContain('PostgreSQL did not start on db1');

    // A running server whose postmaster's pid is not known: no watcher, which could take it for the new one.
    const unknownPid = fakeServer({ running: true, inRecovery: true });
    const withoutPid: FakeExecHandler = async (argv, options, transport) => {
      if (isWatcher(argv)) unknownPid.ran.push('watch');
      const r = await unknownPid.handler(argv, options, transport);
      return r && 'stdout' in r && r.stdout ? { ...r, stdout: r.stdout.replace(/^pg_ctl_pid=.*\n/m, '') } : r;
    };
    const restarted = await realPostgres(withoutPid, 'standby').run({ steps: [{ id: 'restart', hosts: 'db1', postgres: { state: 'restarted' } }] });
    expect(restarted.exitCode).toBe(0);
    expect(unknownPid.ran).toContain('pg_ctl restart');
    expect(unknownPid.ran).not.toContain('watch');
  });

  it('a step that declares no fact changed reads no fact after it', async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    const h = realPostgres(server.handler);
    await h.run({ steps: [{ id: 'cmd', hosts: 'db1', run: { argv: ['touch', '/tmp/x'] } }] });
    expect(server.ran).toEqual(['facts[pgdata,host,server,paths]']);
  });
});

/** A pg client over nothing: answers every query with one row, keeps the transaction state, counts what ran. */
class FakeClient extends EventEmitter {
  inTransaction = false;
  ended = false;
  queries: string[] = [];
  async query(q: string | { text: string }) {
    const text = typeof q === 'string' ? q : q.text;
    if (this.ended) throw new Error('Connection terminated');
    this.queries.push(text);
    if (/^BEGIN/.test(text)) this.inTransaction = true;
    if (text === 'ROLLBACK' || text === 'COMMIT') this.inTransaction = false;
    if (text === 'DISCARD ALL' && this.inTransaction) throw new Error('DISCARD ALL cannot run inside a transaction block');
    return { rows: [{ n: 1 }], rowCount: 1, command: 'SELECT' };
  }
  async end() {
    this.ended = true;
  }
}

describe('connections through the engine', () => {
  it('SQL steps share one connection per host; a restart closes it before it acts and the next step opens a new one; the run\'s end closes all', async () => {
    const server = fakeServer({ running: true, inRecovery: true });
    const opened: FakeClient[] = [];
    let openAtRestart: boolean | undefined;
    const handler: FakeExecHandler = (argv, options, transport) => {
      if (argv.includes('restart')) openAtRestart = opened.some((c) => !c.ended);
      return server.handler(argv, options, transport);
    };
    const h = harness(['db1'], handler, 0, [], undefined, {
      actions: [postgresAction, sqlAction],
      realFacts: true,
      configure: (host) => void (host.role = 'drill'),
      connectPostgres: async () => {
        const c = new FakeClient();
        opened.push(c);
        return c as unknown as Client;
      },
    });
    const q = (id: string) => ({ id, hosts: 'db1', sql: { query: 'SELECT 1 AS n' } });
    const outcome = await h.run({ steps: [q('q1'), q('q2'), q('q3'), { id: 'restart', hosts: 'db1', postgres: { state: 'restarted' } }, q('q4'), q('q5')] });
    expect(outcome.exitCode).toBe(0);
    expect(results(h.events)).toEqual(['q1@db1=ok', 'q2@db1=ok', 'q3@db1=ok', 'restart@db1=changed', 'q4@db1=ok', 'q5@db1=ok']);
    expect(opened).toHaveLength(2);
    // Closed before pg_ctl restart ran: a smart shutdown would wait for it, a restart would break it.
    expect(openAtRestart).toBe(false);
    expect(opened[0]!.ended).toBe(true);
    expect(opened[0]!.queries.filter((x) => x === 'SELECT 1 AS n')).toHaveLength(3);
    expect(opened[1]!.queries.filter((x) => x === 'SELECT 1 AS n')).toHaveLength(2);
  });
});

describe('mergeFacts', () => {
  const before: HostFacts = {
    reachable: true,
    hostname: 'db1',
    bindir: { pg_ctl: true, postgres_major: 15 },
    config_file: '/etc/postgresql/15/main/postgresql.conf',
    pgdata_present: true,
    pgdata_version: 15,
    running: true,
    pid: 10,
    version: 15,
    in_recovery: true,
    timeline: 1,
    system_identifier: '1',
  };

  it("'server' replaces the server's and the data directory's facts and keeps what a run does not change", () => {
    const fresh: HostFacts = { reachable: true, pgdata_present: true, pgdata_version: 15, running: false, version: 15, timeline: 2, system_identifier: '1', cluster_state: 'shut down' };
    expect(mergeFacts(before, fresh, ['server'])).toEqual({ ...fresh, hostname: 'db1', bindir: before.bindir, config_file: before.config_file });
  });

  it("'pgdata' alone keeps the running server's facts; a stopped server's version and timeline follow the data directory", () => {
    const restored: HostFacts = { reachable: true, pgdata_present: true, pgdata_version: 16, running: false, version: 16, timeline: 5, system_identifier: '2' };
    const merged = mergeFacts(before, restored, ['pgdata']);
    expect(merged).toMatchObject({ running: true, pid: 10, in_recovery: true, version: 15, timeline: 1, system_identifier: '2', pgdata_version: 16 });
    const stopped = mergeFacts({ ...before, running: false, pid: undefined, in_recovery: undefined }, restored, ['pgdata']);
    expect(stopped).toMatchObject({ running: false, version: 16, timeline: 5, system_identifier: '2' });
  });

  it('a refresh that could not read the host replaces everything: nothing known before is trusted', () => {
    const gone: HostFacts = { reachable: false, error: 'connection refused', pgdata_present: false, running: false };
    expect(mergeFacts(before, gone, ['pgdata'])).toEqual(gone);
  });
});

describe('every shipped action declares which facts its changes make stale', () => {
  it.each(actions.map((a) => [a.name, a] as const))('%s', (_name, action) => {
    expect(action.changes, `${action.name} declares no changes`).toBeDefined();
  });
});
