/**
 * Connections and probes on a real lab (issue 14), the engine in-process with the real local transport,
 * wrapped to count what it starts: every socket bridge (openStream) with the pids of its processes, and
 * every facts script. Ports 21400-21402 (the lab's db1, db2, drill1).
 *
 * - a no-change standby-from-backup run opens one connection (one bridge) per host and user, and every
 *   bridge process is gone when the run returns (a bridge is the become user's command helper, exec-server.ts);
 * - SQL steps share their host's connection; a restart by a postgres step closes it, and its read of the
 *   server it started opens the one the next steps use; a restart behind pgplay's back (a command) is
 *   noticed before the connection is reused, never silently;
 * - a pg_ctl restart of the standby is read once before it (the one-primary invariant's read, which its
 *   check takes) and once after the restart (no probe in apply, no refresh by the engine on top);
 * - a no-change run reads each server once more than the gather: the invariant's read before the start.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlaybook } from '../../src/app/run-playbook.js';
import type { RunEvent } from '../../src/engine/events.js';
import { labInventoryFile } from '../../src/lab/state.js';
import { createTransport } from '../../src/transports/index.js';
import type { Transport } from '../../src/transports/types.js';
import { createLab, labUp, PLAYBOOKS, waitGone, type TestLab } from './lab-helpers.js';
import { parentPid } from '../support/processes.js';

const BASE = 21400;
let lab: TestLab;

/** pids of the processes whose command line names this socket path (the bridge, and runuser above it). */
async function bridgePids(socketPath: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(socketPath) && cmdline.includes('pgplay-socket-bridge')) pids.push(Number(entry));
  }
  return pids;
}

/**
 * pids of this process's pgplay command helpers (exec-server.ts); one becomes a connection's bridge
 * (openUnixSocket). Only its own: the test files running beside this one run pgplay in their own
 * processes, with helpers of their own that outlive this file's run.
 */
async function helperPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('pgplay-exec 1') && (await descendsFromThisProcess(Number(entry)))) pids.push(Number(entry));
  }
  return pids;
}

/** Whether `pid` is a child of this process, or a child's child (runuser, then the helper's perl). */
async function descendsFromThisProcess(pid: number): Promise<boolean> {
  for (let p = pid, hops = 0; p > 1 && hops < 16; hops++) {
    const ppid = await parentPid(p);
    if (ppid === undefined) return false;
    if (ppid === process.pid) return true;
    p = ppid;
  }
  return false;
}

interface Traced {
  host: string;
  socket: string;
  pids: number[];
}

/** Runs a playbook in-process against the lab, counting bridges and facts scripts per host. */
async function traced(playbookFile: string, params: Record<string, string> = {}) {
  const bridges: Traced[] = [];
  const facts: Array<{ host: string; sections: string }> = [];
  const events: RunEvent[] = [];
  const outcome = await runPlaybook({
    playbookFile,
    inventoryFile: labInventoryFile(lab.dir),
    params,
    check: false,
    diff: false,
    yes: true,
    stateDir: lab.stateDir,
    onEvent: (e) => events.push(e),
    createTransport: (host) => {
      const inner: Transport = createTransport(host, { hosts: {}, resolveSecret: async () => undefined });
      return new Proxy(inner, {
        get(target, prop) {
          if (prop === 'openStream') {
            return async (argv: string[], options?: { become?: string }) => {
              const stream = await target.openStream(argv, options);
              const socket = argv.at(-1)!;
              if (argv.includes('pgplay-socket-bridge')) bridges.push({ host: host.name, socket, pids: await bridgePids(socket) });
              return stream;
            };
          }
          if (prop === 'openUnixSocket') {
            // The local transport's helper of the become user becomes the bridge: no process of its own.
            return async (socketPath: string, options: { become?: string }) => {
              const stream = await target.openUnixSocket?.(socketPath, options);
              if (stream) bridges.push({ host: host.name, socket: socketPath, pids: await helperPids() });
              return stream;
            };
          }
          if (prop === 'exec') {
            return (argv: string[], options?: object) => {
              const script = argv[0] === '/bin/sh' ? (argv[2] ?? '') : '';
              if (script.includes('pgplay-facts 1')) {
                // "by connection": the script without psql, the server asked over the run's idle connection (facts-read.ts).
                const how = script.includes('runsock_inventory') ? ' by connection' : '';
                facts.push({ host: host.name, sections: `${script.includes('bindir.checked') ? 'host,' : ''}${script.includes('pg_ctl_status') ? 'server' : 'pgdata'}${how}` });
              }
              return target.exec(argv, options);
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  });
  const results = events.filter((e): e is Extract<RunEvent, { type: 'step-result' }> => e.type === 'step-result').map((e) => `${e.step}@${e.host}=${e.status}`);
  const perHost = (list: Array<{ host: string }>) => list.reduce<Record<string, number>>((acc, b) => ({ ...acc, [b.host]: (acc[b.host] ?? 0) + 1 }), {});
  return { outcome, events, results, bridges, facts, bridgesPerHost: perHost(bridges) };
}

beforeAll(async () => {
  lab = await createLab(BASE, 'connections');
  await labUp(lab);
  const backup = await lab.run('nightly-backup.yml');
  if (backup.exitCode !== 0) throw new Error(`nightly-backup failed: ${backup.stdout.slice(-2000)}`);
  const standby = await lab.run('standby-from-backup.yml', ['-p', 'host=db2', '--yes']);
  if (standby.exitCode !== 0) throw new Error(`standby-from-backup failed: ${standby.stdout.slice(-2000)}`);
}, 300_000);

afterAll(async () => {
  await lab?.down();
}, 120_000);

describe('connections: one per host and user, closed at the end', () => {
  it('a no-change standby-from-backup opens one connection per host and user; every bridge process is gone after the run', async () => {
    const run = await traced(join(PLAYBOOKS, 'standby-from-backup.yml'), { host: 'db2' });
    expect(run.outcome.exitCode, JSON.stringify(run.outcome.error)).toBe(0);
    expect(run.results.filter((r) => r.endsWith('=changed'))).toEqual([]);
    // One bridge each, whatever the number of steps: opened for each server's first facts read, then
    // db1's prerequisites and streaming wait and db2's receiver check use it.
    expect(run.bridgesPerHost).toEqual({ db1: 1, db2: 1 });
    // Facts scripts on the cluster's servers: the gather at the start, and the one-primary invariant's read
    // before build/start, which the start's check takes; nothing after a start that started nothing. Both
    // ask each server over that connection, without a psql (facts-read.ts).
    const factsOf = (host: string) => run.facts.filter((f) => f.host === host).map((f) => f.sections);
    expect({ db1: factsOf('db1'), db2: factsOf('db2') }).toEqual({
      db1: ['host,server by connection', 'server by connection'],
      db2: ['host,server by connection', 'server by connection'],
    });
    const pids = run.bridges.flatMap((b) => b.pids);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) expect(await waitGone(pid), `bridge process ${pid} still runs after the run`).toBe(true);
    expect(await bridgePids(run.bridges[0]!.socket)).toEqual([]);
    // Both servers are as they were: the primary read-write, the standby in recovery.
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
  });

  it('SQL steps share the connection; a restart closes it; a restart behind pgplay\'s back is noticed before reuse; the pg_ctl restart is read once before it and once after', async () => {
    const file = join(lab.dir, 'connections.yml');
    const count = "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgplay'";
    await writeFile(
      file,
      [
        'name: connections',
        'steps:',
        ...['a1', 'a2'].map((id) => `  - { id: ${id}, hosts: db2, sql: { query: "${count}" }, register: ${id} }`),
        '  - { id: restart, hosts: db2, postgres: { state: restarted } }',
        ...['b1', 'b2'].map((id) => `  - { id: ${id}, hosts: db2, sql: { query: "${count}" }, register: ${id} }`),
        `  - id: restart-behind\n    hosts: db2\n    become: postgres\n    command: { argv: [/usr/lib/postgresql/15/bin/pg_ctl, restart, -D, ${JSON.stringify(lab.pgdata('db2'))}, -m, fast, -w, -l, ${JSON.stringify(join(lab.pgdata('db2'), 'behind.log'))}] }`,
        `  - { id: c1, hosts: db2, sql: { query: "${count}" }, register: c1 }`,
        '  - { id: rows, hosts: db2, assert: { that: "a1.rows[0].n == 1 and a2.rows[0].n == 1 and b1.rows[0].n == 1 and b2.rows[0].n == 1 and c1.rows[0].n == 1" } }',
      ].join('\n') + '\n',
    );
    const run = await traced(file);
    expect(run.outcome.exitCode, JSON.stringify(run.outcome.error)).toBe(0);
    expect(run.results).toEqual([
      'a1@db2=ok',
      'a2@db2=ok',
      'restart@db2=changed',
      'b1@db2=ok',
      'b2@db2=ok',
      'restart-behind@db2=changed',
      'c1@db2=ok',
      'rows@db2=ok',
    ]);
    // db2: one before the restart (its first facts read's, which a1 and a2 use), one the restart's read of the
    // server it started opened (which b1 and b2 use), one after the restart behind pgplay's back. db1: its
    // first facts read's, which its later reads use.
    expect(run.bridgesPerHost).toEqual({ db1: 1, db2: 3 });
    // db2's facts: the gather at the start, the one-primary guard's read before the restart (which the
    // check takes: no probe of its own), and the read after the restart, which the engine keeps (no probe
    // in apply, no refresh) and the guard takes as its read after the step (engine/server-reads.ts).
    // The gather opens the connection a1 and a2 use, and the read before the restart asks it; the restart
    // closes it, and its read of the server it started opens a new one instead of starting psql.
    expect(run.facts.filter((f) => f.host === 'db2').map((f) => f.sections)).toEqual(['host,server by connection', 'server by connection', 'server by connection']);
    // db1, on which no step runs, is not read at the start: the one-primary guard reads it first before the
    // restart (all of it, opening the connection), then after it, beside db2's own read, over that connection.
    expect(run.facts.filter((f) => f.host === 'db1').map((f) => f.sections)).toEqual(['host,server by connection', 'server by connection']);
    for (const pid of run.bridges.flatMap((b) => b.pids)) expect(await waitGone(pid)).toBe(true);
    expect(await lab.psql('db2', 'SELECT pg_is_in_recovery()')).toBe('t');
    expect(await lab.psql('db1', 'SELECT pg_is_in_recovery()')).toBe('f');
  });
});
