import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Client } from 'pg';
import { noteStartupVersion, startupServerVersion } from '../../src/postgres/client.js';
import { PATHS_SQL } from '../../src/postgres/server-paths.js';
import { majorFromServerVersion } from '../../src/postgres/versions.js';
import { factsQuery, parseFacts, serverQueryLines } from '../../src/postgres/facts.js';
import { readAllFacts, readFactsOutput, type RunFactsScript } from '../../src/postgres/facts-read.js';
import { ConnectionPool } from '../../src/postgres/connection-pool.js';
import { probe } from '../../src/postgres/probe.js';
import type { ServerContext } from '../../src/postgres/server-context.js';
import type { Host } from '../../src/model/inventory.js';

/*
 * A refresh or probe asks the run's idle connection instead of starting psql, and only when that is as
 * certain as psql (facts-read.ts). Here the script's output and the server's rows are canned: every case
 * where the connection must not be believed reads again by the whole script, and the connection is given
 * back however the read ends.
 */
const host = {
  name: 'db2',
  pgdata: '/srv/pg/data',
  postgres: { bindir: '/usr/lib/postgresql/15/bin', port: 5432, socketDir: '/run/postgresql', superuser: 'postgres', osUser: 'postgres' },
} as unknown as Host;

const SCRIPT_HEAD = ['pgplay-facts 1', 'pgdata_dir=present', 'pgdata_real=/srv/pg/data', 'pg_version_file=15', 'file.standby.signal=1'];
const RUNNING = ['postmaster_pid=4242', 'pid_alive=1', 'pg_ctl_status=0', 'pg_ctl_pid=4242', 'running=1'];
/** What ties the held connection to that postmaster (facts.ts CALLER_SQL_SECTION), all as they must be. */
const TIED = ['runsock_inventory=1', 'postmaster_in_pgdata=1', 'pm_status=standby ', 'backend_parent=4242'];
const BACKEND_PID = 5151;
const ROWS = [
  'sql.version_num=150010',
  'sql.server_version=15.10',
  'sql.data_directory=/srv/pg/data',
  'sql.port=5432',
  'sql.in_recovery=true',
  'sql.system_identifier=7312345678901234567',
  'sql.timeline=3',
  'sql.current_lsn=',
  'sql.receive_lsn=0/3000060',
  'sql.replay_lsn=0/3000060',
  'sql.replay_paused=false',
  'sqlcontrol.system_identifier=7312345678901234567',
  'sqlcontrol.state=in archive recovery',
  'sqlcontrol.timeline=3',
];
/** What the whole script (with its psql) prints for the same server: what every fallback must return. */
const WHOLE = [...SCRIPT_HEAD, ...RUNNING, 'sql.whole-script=1', 'end=1', ''].join('\n');

interface Fake {
  scripts: string[];
  queries: string[];
  ended: number;
}

function fakes(opts: { script: string[]; rows?: string[]; queryFails?: boolean }): { run: RunFactsScript; idle: () => Promise<Client>; seen: Fake } {
  const seen: Fake = { scripts: [], queries: [], ended: 0 };
  const client = {
    processID: BACKEND_PID,
    query: async (q: { text: string; rowMode: string; query_timeout: number }) => {
      seen.queries.push(q.text);
      if (q.text === 'DISCARD ALL') return { rows: [] };
      expect(q.rowMode).toBe('array');
      expect(q.query_timeout).toBeGreaterThan(0);
      expect(q.query_timeout).toBeLessThanOrEqual(10_000);
      if (opts.queryFails) throw new Error('terminating connection due to administrator command');
      // A NULL row (psql prints it as an empty line) is left out as the script leaves it.
      return { rows: [...(opts.rows ?? ROWS).map((r): Array<string | null> => [r]), [null]] };
    },
    end: async () => {
      seen.ended++;
    },
  } as unknown as Client;
  const run = async (argv: string[], timeoutMs: number) => {
    const script = argv[2]!;
    expect(timeoutMs).toBeGreaterThan(0);
    expect(timeoutMs).toBeLessThanOrEqual(30_000);
    // The script without psql is told which backend to check.
    if (script.includes('runsock_inventory')) expect(script).toContain(`BACKEND_PID='${BACKEND_PID}'`);
    seen.scripts.push(script.includes('runsock_inventory') ? 'without psql' : 'whole');
    return script.includes('runsock_inventory') ? [...opts.script, 'end=1', ''].join('\n') : WHOLE;
  };
  return { run, idle: async () => client, seen };
}

describe('facts read over the run\'s idle connection', () => {
  it('a running server whose socket is the inventory\'s: the script without psql, then the query; the facts psql would give', async () => {
    const { run, idle, seen } = fakes({ script: [...SCRIPT_HEAD, ...RUNNING, ...TIED] });
    const out = await readFactsOutput(host, { host: false }, run, idle);
    expect(seen.scripts).toEqual(['without psql']);
    expect(seen.queries).toEqual([factsQuery(15)]);
    expect(seen.ended).toBe(1);
    const facts = parseFacts(out);
    expect(facts).toMatchObject({
      running: true,
      pid: 4242,
      in_recovery: true,
      system_identifier: '7312345678901234567',
      timeline: 3,
      cluster_state: 'in archive recovery',
      server_version_num: 150010,
      receive_lsn: '0/3000060',
    });
    expect(facts.error).toBeUndefined();
    // The lines sit before the script's last line, which says the output is whole.
    expect(out.trim().split('\n').at(-1)).toBe('end=1');
  });

  it('a server that is not running: the script has read pg_control itself and nothing is asked', async () => {
    const stopped = [...SCRIPT_HEAD, 'pg_ctl_status=3', 'running=0', 'control.system_identifier=7312345678901234567', 'control.state=shut down in recovery', 'control.timeline=3'];
    const { run, idle, seen } = fakes({ script: stopped });
    const facts = parseFacts(await readFactsOutput(host, { host: false }, run, idle));
    expect(seen.scripts).toEqual(['without psql']);
    expect(seen.queries).toEqual([]);
    expect(seen.ended).toBe(1);
    expect(facts).toMatchObject({ running: false, cluster_state: 'shut down in recovery', system_identifier: '7312345678901234567' });
  });

  const without = (line: string) => [...SCRIPT_HEAD, ...RUNNING, ...TIED.filter((l) => !l.startsWith(line))];
  const replaced = (line: string) => [...SCRIPT_HEAD, ...RUNNING, ...TIED.map((l) => (l.startsWith(line.split('=')[0]!) ? line : l))];
  it.each([
    ['the running postmaster listens on another socket than the inventory names', { script: without('runsock_inventory') }, 0],
    ['the postmaster is not running in this PGDATA (its working directory is another)', { script: without('postmaster_in_pgdata') }, 0],
    ["the connection's backend is not that postmaster's child (another server took the socket over)", { script: replaced('backend_parent=999') }, 0],
    ["the backend's parent could not be read", { script: without('backend_parent') }, 0],
    ['the postmaster is stopping (a smart shutdown waits for the connections it has)', { script: replaced('pm_status=stopping') }, 0],
    ['postmaster.pid says nothing of its state (before 10)', { script: replaced('pm_status=') }, 0],
    ['pg_ctl names another pid than postmaster.pid', { script: [...SCRIPT_HEAD, ...RUNNING.map((l) => l.replace('pg_ctl_pid=4242', 'pg_ctl_pid=4343')), ...TIED] }, 0],
    ['the query fails (the server restarted since the connection was opened)', { script: [...SCRIPT_HEAD, ...RUNNING, ...TIED], queryFails: true }, 1],
    [
      'the server serves another data directory',
      { script: [...SCRIPT_HEAD, ...RUNNING, ...TIED], rows: ROWS.map((r) => r.replace('=/srv/pg/data', '=/srv/other/data')) },
      1,
    ],
    [
      'the server names the directory by a spelling the script did not resolve (a symbolic link)',
      { script: [...SCRIPT_HEAD, ...RUNNING, ...TIED], rows: ROWS.map((r) => r.replace('=/srv/pg/data', '=/srv/link/data')) },
      1,
    ],
    ['the server does not give every pg_control field', { script: [...SCRIPT_HEAD, ...RUNNING, ...TIED], rows: ROWS.filter((r) => !r.startsWith('sqlcontrol.state=')) }, 1],
    ['the script\'s output is cut short', { script: [...SCRIPT_HEAD, ...RUNNING, ...TIED].slice(0, 6) }, 0],
  ])('%s: the whole script reads again, with its psql', async (_what, opts, queries) => {
    const f = fakes(opts);
    // A cut-short output has no end line either.
    const run = opts.script.length === 6 ? async (argv: string[], ms: number) => ((await f.run(argv, ms)).includes('runsock') ? opts.script.join('\n') : WHOLE) : f.run;
    const out = await readFactsOutput(host, { host: false }, run, f.idle);
    expect(out).toBe(WHOLE);
    expect(f.seen.queries).toHaveLength(queries);
    expect(f.seen.ended).toBe(1);
  });

  it('no idle connection, a host without a data directory, the host section or the server-paths query: the whole script only', async () => {
    const f = fakes({ script: [...SCRIPT_HEAD, ...RUNNING, ...TIED] });
    expect(await readFactsOutput(host, { host: false }, f.run, async () => undefined)).toBe(WHOLE);
    expect(await readFactsOutput(host, { host: false }, f.run)).toBe(WHOLE);
    expect(await readFactsOutput({ ...host, pgdata: undefined } as Host, { host: false }, f.run, f.idle)).toBe(WHOLE);
    expect(await readFactsOutput(host, { paths: true }, f.run, f.idle)).toBe(WHOLE);
    expect(await readFactsOutput(host, { host: false, server: false }, f.run, f.idle)).toBe(WHOLE);
    expect(await readFactsOutput(host, {}, f.run, f.idle)).toBe(WHOLE);
    expect(f.seen.scripts).toEqual(['whole', 'whole', 'whole', 'whole', 'whole', 'whole']);
    expect(f.seen.ended).toBe(0);
  });

  it('a connection the run dropped meanwhile (a step began changing the server) is not asked', async () => {
    const f = fakes({ script: [...SCRIPT_HEAD, ...RUNNING, ...TIED] });
    const pool = new ConnectionPool();
    const fake = await f.idle();
    Object.assign(fake, { on: () => fake });
    await (await pool.lease('db2', 'postgres:', async () => fake)).end();
    const run = async (argv: string[], ms: number) => {
      const out = await f.run(argv, ms);
      // The step's drop comes while the script runs.
      if (argv[2]!.includes('runsock_inventory')) await pool.drop('db2');
      return out;
    };
    // DISCARD ALL on lease is the fake's first query.
    expect(await readFactsOutput(host, { host: false }, run, () => pool.leaseIdle('db2', 'postgres:'))).toBe(WHOLE);
    expect(f.seen.queries).toEqual(['DISCARD ALL']);
    expect(pool.size).toBe(0);
  });

  it('a script that fails gives the connection back and fails as the read would', async () => {
    const f = fakes({ script: [] });
    const boom = new Error('connection lost');
    await expect(readFactsOutput(host, { host: false }, async () => Promise.reject(boom), f.idle)).rejects.toBe(boom);
    expect(f.seen.ended).toBe(1);
  });
});

describe("an action's probe", () => {
  it("asks the run's idle connection of the host it reads (the step's own or another's), as the engine's refresh does", async () => {
    const f = fakes({ script: [...SCRIPT_HEAD, ...RUNNING, ...TIED] });
    const asked: string[] = [];
    const transport = { exec: async (argv: string[], opts: { timeoutMs: number }) => ({ stdout: await f.run(argv, opts.timeoutMs), stderr: '', exitCode: 0 }) };
    const other = { ...host, name: 'db1' } as Host;
    const ctx = {
      host: { ...host, name: 'db3' },
      hosts: { db1: other, db2: host },
      transport,
      transportFor: () => transport,
      signal: new AbortController().signal,
      log: () => undefined,
      connectPostgres: async () => Promise.reject(new Error('a probe opens no connection')),
      idleConnection: async (name: string) => (asked.push(name), f.idle()),
    } as unknown as ServerContext;
    const facts = await probe(ctx, 'db1');
    expect(asked).toEqual(['db1']);
    expect(f.seen.scripts).toEqual(['without psql']);
    expect(f.seen.queries).toEqual([factsQuery(15)]);
    expect(f.seen.ended).toBe(1);
    expect(facts).toMatchObject({ running: true, in_recovery: true, system_identifier: '7312345678901234567' });
  });
});

describe('serverQueryLines', () => {
  it('prints what the script\'s psql section prints: sql lines without the version, the real directory, pg_control', () => {
    expect(serverQueryLines(ROWS, '/srv/pg/data', '/srv/pg/data')).toEqual([
      ...ROWS.filter((r) => r.startsWith('sql.') && !r.startsWith('sql.server_version=')),
      'data_directory_real=/srv/pg/data',
      'control.system_identifier=7312345678901234567',
      'control.state=in archive recovery',
      'control.timeline=3',
    ]);
  });

  it('takes the inventory\'s path or the resolved one, nothing else, and never an unresolved directory', () => {
    const via = (dd: string) => ROWS.map((r) => r.replace('=/srv/pg/data', `=${dd}`));
    expect(serverQueryLines(via('/pg'), '/pg', '/srv/pg/data')).toBeDefined();
    expect(serverQueryLines(via('/srv/pg/data'), '/pg', '/srv/pg/data')?.at(-4)).toBe('data_directory_real=/srv/pg/data');
    expect(serverQueryLines(via('/other'), '/pg', '/srv/pg/data')).toBeUndefined();
    expect(serverQueryLines(ROWS, '/srv/pg/data', '')).toBeUndefined();
    expect(serverQueryLines(ROWS.filter((r) => !r.startsWith('sql.data_directory=')), '/srv/pg/data', '/srv/pg/data')).toBeUndefined();
  });

  it('factsQuery picks the replay-pause function by the on-disk major, as the script does', () => {
    expect(factsQuery(15)).toContain('pg_get_wal_replay_pause_state()');
    expect(factsQuery(13)).toContain('pg_is_wal_replay_paused()');
    expect(factsQuery(undefined)).toContain('pg_is_wal_replay_paused()');
  });
});

describe("a host's first read over the connection the run opens for it (readAllFacts)", () => {
  /** A connection as connectPostgres makes it: its server's ParameterStatus messages reach noteStartupVersion. */
  function opened(rows: string[], versionNum: string) {
    const queries: string[] = [];
    const client = Object.assign(new EventEmitter(), {
      processID: BACKEND_PID,
      connection: new EventEmitter(),
      query: async (q: { text: string }) => {
        queries.push(q.text);
        if (q.text === "select current_setting('server_version_num')") return { rows: [[versionNum]] };
        if (q.text === 'select pg_backend_pid()::text') return { rows: [[String(BACKEND_PID)]] };
        return { rows: rows.map((r) => [r]) };
      },
      end: async () => undefined,
    }) as unknown as Client & { connection: EventEmitter };
    return { client, queries };
  }
  const scriptOut = [...SCRIPT_HEAD, ...RUNNING, ...TIED, 'end=1', ''].join('\n');
  const run: RunFactsScript = async (argv) => (argv[2]!.includes('runsock_inventory') ? scriptOut : WHOLE);
  const whole = () => ['/bin/sh', '-c', 'whole'];

  it('takes the major from the version the server reported as the connection started: no query asks it', async () => {
    const { client, queries } = opened(ROWS.map((r) => r.replace('15.10', '13.12').replace('150010', '130012')), '130012');
    noteStartupVersion(client);
    client.connection.emit('parameterStatus', { parameterName: 'server_version', parameterValue: '13.12 (Debian 13.12-1.pgdg120+1)' });
    // As a run hands it out: the pool's lease of the connection (a Proxy of the client).
    const pool = new ConnectionPool();
    const lease = await pool.lease('db2', 'postgres', async () => client);
    const out = await readAllFacts(host, run, async () => lease, whole);
    expect(startupServerVersion(lease)).toBe('13.12 (Debian 13.12-1.pgdg120+1)');
    expect(queries).toEqual([`${factsQuery(13)} union all ${PATHS_SQL}`, 'select pg_backend_pid()::text']);
    expect(parseFacts(out)).toMatchObject({ running: true, server_version_num: 130012, in_recovery: true });
  });

  it('asks the version of a connection whose start did not report it', async () => {
    const { client, queries } = opened(ROWS, '150010');
    const out = await readAllFacts(host, run, async () => client, whole);
    expect(queries).toEqual(["select current_setting('server_version_num')", `${factsQuery(15)} union all ${PATHS_SQL}`, 'select pg_backend_pid()::text']);
    expect(parseFacts(out)).toMatchObject({ running: true, server_version_num: 150010, in_recovery: true });
  });

  it('reads the major of every spelling of server_version', () => {
    expect(majorFromServerVersion('15.10 (Debian 15.10-1.pgdg120+1)')).toBe(15);
    expect(majorFromServerVersion('9.6.24')).toBe(9);
    expect(majorFromServerVersion('17beta1')).toBe(17);
    expect(majorFromServerVersion('')).toBeUndefined();
    expect(majorFromServerVersion(undefined)).toBeUndefined();
    expect(majorFromServerVersion('devel')).toBeUndefined();
  });
});
