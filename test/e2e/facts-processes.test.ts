/**
 * What reading a host's state costs, counted in programs started (every exec is tens of milliseconds
 * on a slow machine): a full facts gathering and a probe, on a running and on a stopped cluster, traced
 * with strace. And the proof that the cheap path says the same: pg_control's fields and the bindir's
 * postgres version read over SQL from the running server equal what pg_controldata and
 * `pg_ctl --version` print.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execaSync } from 'execa';
import { LocalTransport } from '../../src/transports/local.js';
import type { Transport } from '../../src/transports/types.js';
import { gatherFacts } from '../../src/engine/facts.js';
import { factsArgv, firstValues, parseFacts } from '../../src/postgres/facts.js';
import { parseControl } from '../../src/postgres/identity.js';
import { PG_CTL_STATUS_FUNCTION } from '../../src/postgres/pg-ctl-status.js';
import type { FactArea } from '../../src/model/facts.js';
import type { Host } from '../../src/model/inventory.js';
import { ConnectionPool } from '../../src/postgres/connection-pool.js';
import { connectPostgres } from '../../src/postgres/client.js';
import { connectionWhereSocket } from '../../src/postgres/facts-read.js';
import type { HostFacts } from '../../src/model/facts.js';
import { hostForCluster, PG_OS_USER, startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';

const strace = execaSync('sh', ['-c', 'command -v strace'], { reject: false }).stdout.trim();

/** The programs (basenames, sorted) that `argv` exec'd, the first one (/bin/sh itself) left out. */
async function programsStartedBy(host: Host, run: (t: Transport) => Promise<unknown>): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'pgplay-strace-'));
  await chmod(dir, 0o777);
  const inner = new LocalTransport(host);
  // -ff: one file per process, so no line is split by another process's calls.
  const traced = {
    connect: () => inner.connect(),
    exec: (argv: string[], opts: Parameters<Transport['exec']>[1]) =>
      inner.exec([strace, '-ff', '-qq', '-e', 'trace=execve', '-o', join(dir, 'trace'), ...argv], opts),
  } as unknown as Transport;
  try {
    await run(traced);
    const execs: Array<{ pid: number; program: string }> = [];
    for (const file of await readdir(dir)) {
      const pid = Number(file.split('.')[1]);
      for (const line of (await readFile(join(dir, file), 'utf8')).split('\n')) {
        const m = /^execve\("([^"]+)".* = 0$/.exec(line);
        if (m) execs.push({ pid, program: basename(m[1]!) });
      }
    }
    const first = Math.min(...execs.map((e) => e.pid));
    return execs.filter((e) => !(e.pid === first && e.program === 'sh')).map((e) => e.program).sort();
  } finally {
    await inner.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const fullGathering = (host: Host) => (t: Transport) => gatherFacts(host, t);
const refresh = (host: Host, areas: FactArea[]) => (t: Transport) => gatherFacts(host, t, areas);
const probe = (host: Host) => (t: Transport) => t.exec(factsArgv(host, { host: false }), { become: PG_OS_USER });

/** setpriv's arguments that run what follows as `uid` (its group the same number), with no supplementary groups. */
const asUid = (uid: number) => [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];

describe.skipIf(!strace)('processes started by one facts gathering and one probe', () => {
  let cluster: Cluster;
  let host: Host;
  /** The same host as a backup repository: no data directory, its facts read as the connection's user. */
  const repositoryOf = (h: Host): Host => ({ ...h, name: 'bk1', role: 'repository', pgdata: undefined });
  const postgresUid = () => Number(execaSync('id', ['-u', PG_OS_USER]).stdout);

  beforeAll(async () => {
    cluster = await startCluster({ port: 21518 });
    host = hostForCluster(cluster);
  });

  afterAll(async () => {
    await stopAllClusters();
  });

  it('a running server: one psql; the user, pg_ctl status, pg_controldata and the bindir version need no process', async () => {
    expect(await programsStartedBy(host, fullGathering(host))).toEqual(['psql']);
    expect(await programsStartedBy(host, probe(host))).toEqual(['psql']);
    expect(await programsStartedBy(host, refresh(host, ['pgdata', 'server']))).toEqual(['psql']);
  });

  it('a stopped server: pg_controldata and pg_ctl --version (not postgres --version: its libraries cost ~5 times as much), no psql', async () => {
    await cluster.stop({ keep: true });
    try {
      expect(await programsStartedBy(host, fullGathering(host))).toEqual(['pg_controldata', 'pg_ctl']);
      expect(await programsStartedBy(host, probe(host))).toEqual(['pg_controldata']);
    } finally {
      await cluster.start();
    }
  });

  it('a host without a data directory (a backup repository): no process, and no bindir read', async () => {
    const repository = repositoryOf(host);
    let facts: Awaited<ReturnType<typeof gatherFacts>> | undefined;
    expect(await programsStartedBy(repository, async (t) => (facts = await gatherFacts(repository, t)))).toEqual([]);
    // Read as the connection's user (root here), named without `id`.
    expect(facts).toMatchObject({ reachable: true, user: 'root', pgdata_present: false, running: false });
    expect(facts!.hostname).toBeTruthy();
    expect(facts!.bindir).toBeUndefined();
  });

  it("the user: /etc/passwd's name for the uid the script runs as, and id's answer for a uid it does not list", () => {
    const [sh, c, script] = factsArgv(repositoryOf(host));
    const userAs = (id: number) => {
      const r = spawnSync('setpriv', [...asUid(id), sh!, c!, script!], { encoding: 'utf8', cwd: '/' });
      expect(r.status, r.stderr).toBe(0);
      return parseFacts(r.stdout).user;
    };
    expect(userAs(postgresUid())).toBe(PG_OS_USER);
    // A uid without a line in /etc/passwd (a directory-service user looks the same to the script): what
    // \`id -un\` prints, as before (coreutils prints the number when no name is found).
    const unlisted = 47_011;
    expect(execaSync('getent', ['passwd', String(unlisted)], { reject: false }).exitCode).not.toBe(0);
    expect(userAs(unlisted)).toBe(execaSync('setpriv', [...asUid(unlisted), 'id', '-un'], { reject: false }).stdout.trim());
  });

  it('the user listed past the lines the script reads itself: named by id, the same name', async () => {
    // A private mount namespace whose /etc/passwd lists postgres after 100 other users.
    const dir = await mkdtemp(join(tmpdir(), 'pgplay-passwd-'));
    // strace, run as postgres, writes its trace here.
    await chmod(dir, 0o777);
    try {
      const passwd = (await readFile('/etc/passwd', 'utf8')).split('\n').filter((l) => l !== '');
      const own = passwd.filter((l) => l.startsWith(`${PG_OS_USER}:`));
      const others = passwd.filter((l) => !l.startsWith(`${PG_OS_USER}:`));
      const filler = Array.from({ length: 100 }, (_, i) => `pgplay-filler-${i}:x:${60_000 + i}:${60_000 + i}::/nonexistent:/usr/sbin/nologin`);
      await writeFile(join(dir, 'passwd'), [...others, ...filler, ...own, ''].join('\n'));
      const [sh, c, script] = factsArgv(repositoryOf(host));
      const inner = `mount --bind "$1" /etc/passwd && exec setpriv ${asUid(postgresUid()).join(' ')} strace -f -qq -e trace=execve -o "$2" "$3" "$4" "$5"`;
      const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', inner, 'pgplay-passwd', join(dir, 'passwd'), join(dir, 'trace'), sh!, c!, script!], { encoding: 'utf8', cwd: '/' });
      expect(r.status, r.stderr).toBe(0);
      expect(parseFacts(r.stdout).user).toBe(PG_OS_USER);
      expect(await readFile(join(dir, 'trace'), 'utf8')).toMatch(/execve\("[^"]*\/id"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A refresh of the data directory and server as the engine reads it with a connection of the run's left
 * idle by an earlier step (opened here, then given back): `read` runs with the pool's idle connection.
 */
async function withIdleConnection<T>(host: Host, read: (idle: () => Promise<import('pg').Client | undefined>, pool: ConnectionPool) => Promise<T>): Promise<T> {
  const transport = new LocalTransport(host);
  const pool = new ConnectionPool();
  try {
    await (await pool.lease(host.name, 'postgres:', () => connectPostgres(transport, host))).end();
    return await read(() => pool.leaseIdle(host.name, 'postgres:'), pool);
  } finally {
    await pool.closeAll();
    await transport.close();
  }
}

/** What a read says of a server that must not depend on how it was read (LSNs move on their own). */
const SERVER_KEYS = ['running', 'pid', 'in_recovery', 'system_identifier', 'timeline', 'cluster_state', 'version', 'server_version_num', 'pgdata_present', 'pgdata_version', 'replay_paused', 'error'] as const;
const serverView = (facts: HostFacts) => Object.fromEntries(SERVER_KEYS.map((k) => [k, facts[k]]));

/**
 * A host's first read as a run does it on this machine (RunContext: connectionWhereSocket): the pool opens
 * a connection where the server's socket is, the read asks it instead of psql, and gives it back.
 */
async function firstRead(host: Host, t: Transport, pool: ConnectionPool, transport: Transport): Promise<HostFacts> {
  const open = (timeoutMs: number) => pool.lease(host.name, 'postgres:', () => connectPostgres(transport, host, { connectTimeoutMs: timeoutMs }), timeoutMs);
  return gatherFacts(host, t, undefined, connectionWhereSocket(host, open));
}

/** What a full read says that must not depend on how it was read. */
const FULL_KEYS = [...SERVER_KEYS, 'hostname', 'user', 'bindir', 'config_file', 'hba_file', 'data_directory', 'layout_contradictions'] as const;
const fullView = (facts: HostFacts) => Object.fromEntries(FULL_KEYS.map((k) => [k, facts[k]]));

/** `read` with a pool and a transport for its connections, both closed after. */
async function withPool<T>(h: Host, read: (pool: ConnectionPool, transport: Transport) => Promise<T>): Promise<T> {
  const transport = new LocalTransport(h);
  const pool = new ConnectionPool();
  try {
    return await read(pool, transport);
  } finally {
    await pool.closeAll();
    await transport.close();
  }
}

describe.skipIf(!strace)("reads over a connection of the run's (facts-read.ts): a later read over an idle one, a first read over one opened for it", () => {
  let cluster: Cluster;
  let host: Host;

  beforeAll(async () => {
    cluster = await startCluster({ port: 21518 });
    host = hostForCluster(cluster);
  });

  afterAll(async () => {
    await stopAllClusters();
  });

  it('a running server: no process at all, and what the psql read says', async () => {
    let viaConnection: HostFacts | undefined;
    await withIdleConnection(host, async (idle, pool) => {
      expect(await programsStartedBy(host, async (t) => (viaConnection = await gatherFacts(host, t, ['pgdata', 'server'], idle)))).toEqual([]);
      // Given back, still open, for the next step.
      expect(pool.size).toBe(1);
    });
    const transport = new LocalTransport(host);
    const viaPsql = await gatherFacts(host, transport, ['pgdata', 'server']).finally(() => transport.close());
    expect(viaPsql.error).toBeUndefined();
    expect(viaConnection!.system_identifier).toMatch(/^\d+$/);
    expect(viaConnection).toMatchObject({ running: true, pid: cluster.pid, in_recovery: false, cluster_state: 'in production' });
    expect(serverView(viaConnection!)).toEqual(serverView(viaPsql));
  });

  it('a server restarted since the connection was opened: psql reads the new postmaster', async () => {
    let facts: HostFacts | undefined;
    const before = cluster.pid;
    await withIdleConnection(host, async (idle, pool) => {
      await cluster.stop({ keep: true });
      await cluster.start();
      expect(cluster.pid).not.toBe(before);
      expect(await programsStartedBy(host, async (t) => (facts = await gatherFacts(host, t, ['pgdata', 'server'], idle)))).toEqual(['psql']);
      // The broken connection is gone, not handed out again.
      expect(pool.size).toBe(0);
    });
    expect(facts).toMatchObject({ running: true, pid: cluster.pid, in_recovery: false });
    expect(facts!.error).toBeUndefined();
  });

  it('a server stopped since: the script reads pg_control, no psql, and the facts say stopped', async () => {
    let facts: HostFacts | undefined;
    await withIdleConnection(host, async (idle) => {
      await cluster.stop({ keep: true });
      try {
        expect(await programsStartedBy(host, async (t) => (facts = await gatherFacts(host, t, ['pgdata', 'server'], idle)))).toEqual(['pg_controldata']);
      } finally {
        await cluster.start();
      }
    });
    expect(facts).toMatchObject({ running: false, cluster_state: 'shut down' });
    expect(facts!.pid).toBeUndefined();
  });

  /** A transport that runs `between` once the script without psql has returned, before the query. */
  const pausedAfterScript = (between: () => Promise<void>): Transport => {
    const inner = new LocalTransport(host);
    let done = false;
    return {
      connect: () => inner.connect(),
      close: () => inner.close(),
      exec: async (argv: string[], opts: Parameters<Transport['exec']>[1]) => {
        const result = await inner.exec(argv, opts);
        if (!done && (argv[2] ?? '').includes('runsock_inventory')) {
          done = true;
          await between();
        }
        return result;
      },
    } as unknown as Transport;
  };

  it('a restart between the script and the query: the connection fails, and psql reads the new postmaster', async () => {
    const before = cluster.pid;
    const transport = pausedAfterScript(async () => {
      await cluster.stop({ keep: true });
      await cluster.start();
    });
    const facts = await withIdleConnection(host, (idle) => gatherFacts(host, transport, ['pgdata', 'server'], idle)).finally(() => transport.close());
    expect(cluster.pid).not.toBe(before);
    expect(facts).toMatchObject({ running: true, pid: cluster.pid, in_recovery: false });
    expect(facts.error).toBeUndefined();
  });

  it('a smart shutdown waiting for the held connection: not taken as a running server; psql reports it shutting down', async () => {
    let facts: HostFacts | undefined;
    try {
      await withIdleConnection(host, async (idle) => {
        // Smart: new connections are refused, the ones there are kept (this pool's), and pg_ctl returns at once.
        execaSync('runuser', ['-u', PG_OS_USER, '--', join(cluster.bindir, 'pg_ctl'), 'stop', '-D', cluster.pgdata, '-m', 'smart', '--no-wait']);
        expect(await readFile(join(cluster.pgdata, 'postmaster.pid'), 'utf8')).toMatch(/\nstopping\s*$/);
        // The script without psql, then the whole script: its psql is refused, so it reads pg_control itself.
        expect(await programsStartedBy(host, async (t) => (facts = await gatherFacts(host, t, ['pgdata', 'server'], idle)))).toEqual(['pg_controldata', 'psql', 'sh']);
      });
    } finally {
      // The pool's connection closed: the shutdown ends; the cluster is started again for the next test.
      await cluster.stop({ keep: true });
      await cluster.start();
    }
    expect(facts!.error).toMatch(/shutting down/);
  });

  it('the inventory names another socket than the running postmaster uses: psql at the postmaster\'s, not the connection', async () => {
    // A second server listening at the inventory's socket: the pool's connection reaches it, not this PGDATA's.
    const other = await startCluster({ port: 21519 });
    const misplaced: Host = { ...host, postgres: { ...host.postgres, socketDir: other.socketDir, port: other.port } };
    const otherIdentifier = serverIdentifier(other);
    let facts: HostFacts | undefined;
    try {
      await withIdleConnection(misplaced, async (idle) => {
        // The script without psql, which finds the postmaster's socket is not the inventory's, then the whole
        // script (a second sh) with its psql.
        expect(await programsStartedBy(misplaced, async (t) => (facts = await gatherFacts(misplaced, t, ['pgdata', 'server'], idle)))).toEqual(['psql', 'sh']);
      });
    } finally {
      await other.stop();
    }
    // The server of this PGDATA, found through postmaster.pid as before, not the other one's answers.
    expect(facts).toMatchObject({ running: true, pid: cluster.pid });
    expect(facts!.system_identifier).toBe(serverIdentifier(cluster));
    expect(facts!.system_identifier).not.toBe(otherIdentifier);
  });

  it('first read, a running server: no process but the script, what psql gives, and the connection stays open for the steps', async () => {
    let viaConnection: HostFacts | undefined;
    await withPool(host, async (pool, transport) => {
      expect(await programsStartedBy(host, async (t) => (viaConnection = await firstRead(host, t, pool, transport)))).toEqual([]);
      expect([pool.opened, pool.size]).toEqual([1, 1]);
    });
    const transport = new LocalTransport(host);
    const viaPsql = await gatherFacts(host, transport).finally(() => transport.close());
    expect(viaPsql.error).toBeUndefined();
    expect(viaConnection).toMatchObject({ running: true, pid: cluster.pid, in_recovery: false, cluster_state: 'in production', config_file: join(cluster.pgdata, 'postgresql.conf') });
    expect(viaConnection!.bindir?.postgres_major).toBeGreaterThan(0);
    expect(fullView(viaConnection!)).toEqual(fullView(viaPsql));
  });

  it('first read, a stopped server: no connection is tried (no socket), and the script reads pg_control as before', async () => {
    let facts: HostFacts | undefined;
    await cluster.stop({ keep: true });
    try {
      await withPool(host, async (pool, transport) => {
        expect(await programsStartedBy(host, async (t) => (facts = await firstRead(host, t, pool, transport)))).toEqual(['pg_controldata', 'pg_ctl']);
        expect(pool.opened).toBe(0);
      });
    } finally {
      await cluster.start();
    }
    expect(facts).toMatchObject({ running: false, cluster_state: 'shut down' });
  });

  it('first read, a postmaster that accepts and never answers (stopped by a signal): the script still reads what it can, with all of its time', async () => {
    let facts: HostFacts | undefined;
    process.kill(cluster.pid, 'SIGSTOP');
    try {
      await withPool(host, async (pool, transport) => {
        facts = await firstRead(host, new LocalTransport(host), pool, transport);
      });
    } finally {
      process.kill(cluster.pid, 'SIGCONT');
    }
    // What psql's read gives of such a server: running, psql's timeout, and pg_control's fields (not a read
    // that timed out as a whole, which would leave only "unknown").
    expect(facts).toMatchObject({ reachable: true, running: true, cluster_state: 'in production', system_identifier: serverIdentifier(cluster) });
    expect(facts!.error).toMatch(/psql: .*timeout/);
  }, 60_000);

  it("first read, another server at the inventory's socket: its answers are not taken; the whole script reads this PGDATA's, with psql", async () => {
    const other = await startCluster({ port: 21519 });
    const misplaced: Host = { ...host, postgres: { ...host.postgres, socketDir: other.socketDir, port: other.port } };
    let facts: HostFacts | undefined;
    try {
      await withPool(misplaced, async (pool, transport) => {
        // The script with the connection's answers, not tied; then the whole script, whose facts psql asks the
        // postmaster's own socket and whose paths psql the inventory's (as a first read always did here).
        expect(await programsStartedBy(misplaced, async (t) => (facts = await firstRead(misplaced, t, pool, transport)))).toEqual(['psql', 'psql', 'sh']);
        expect(pool.opened).toBe(1);
      });
    } finally {
      await other.stop();
    }
    expect(facts).toMatchObject({ running: true, pid: cluster.pid });
    expect(facts!.system_identifier).toBe(serverIdentifier(cluster));
  });
});

function serverIdentifier(cluster: Cluster): string {
  const out = execaSync(join(cluster.bindir, 'pg_controldata'), ['-D', cluster.pgdata], { env: { LC_ALL: 'C' } }).stdout;
  return /Database system identifier:\s+(\d+)/.exec(out)![1]!;
}

/** The raw script output of the facts script, as the PGDATA owner. */
async function factsOutput(host: Host, sections: Parameters<typeof factsArgv>[1]): Promise<string> {
  const t = new LocalTransport(host);
  try {
    return (await t.exec(factsArgv(host, sections), { become: PG_OS_USER })).stdout;
  } finally {
    await t.close();
  }
}

function lookup(stdout: string): (key: string) => string | undefined {
  const kv = firstValues(stdout.split('\n'));
  return (key) => kv.get(key);
}

describe('pg_control and the bindir read over SQL equal pg_controldata and pg_ctl --version', () => {
  afterAll(async () => {
    await stopAllClusters();
  });

  it('on a running primary and a running standby', async () => {
    const primary = await startCluster({ port: 21518, settings: { wal_level: 'replica', max_wal_senders: 5 } });
    const standby = await startCluster({ port: 21519, noStart: true, init: false });
    const bb = execaSync(
      'runuser',
      ['-u', PG_OS_USER, '--', join(primary.bindir, 'pg_basebackup'), '-D', standby.pgdata, '-R', '-X', 'stream', '-d', `host=${primary.socketDir} port=21518 user=${PG_OS_USER}`],
      { reject: false },
    );
    expect(bb.stderr).toBe('');
    await standby.start();
    for (const [cluster, state] of [[primary, 'in production'], [standby, 'in archive recovery']] as const) {
      const host = hostForCluster(cluster);
      // The server section off: pg_controldata and pg_ctl --version are what the script reads.
      const fromTools = await factsOutput(host, { server: false });
      const fromSql = await factsOutput(host, {});
      expect(lookup(fromSql)('running')).toBe('1');
      expect(lookup(fromTools)('running')).toBeUndefined();
      const control = parseControl(lookup(fromTools));
      expect(control.state).toBe(state);
      expect(parseControl(lookup(fromSql))).toEqual(control);
      expect(lookup(fromSql)('bindir.version')).toBe(lookup(fromTools)('bindir.version'));
      // The same PG_VERSION as the postgres binary's own.
      expect(`postgres (PostgreSQL) ${lookup(fromTools)('bindir.version')}`).toBe(execaSync(join(cluster.bindir, 'postgres'), ['--version']).stdout.trim());
      expect(lookup(fromTools)('bindir.version')).toMatch(/^15\./);
      const toolsFacts = parseFacts(fromTools);
      const sqlFacts = parseFacts(fromSql);
      expect(sqlFacts.error).toBeUndefined();
      // A refresh over the run's idle connection reads the same server as the script's psql.
      const viaConnection = await withIdleConnection(host, async (idle) => {
        const transport = new LocalTransport(host);
        return gatherFacts(host, transport, ['pgdata', 'server'], idle).finally(() => transport.close());
      });
      expect(serverView(viaConnection)).toEqual(serverView(sqlFacts));
      expect(viaConnection.in_recovery).toBe(state === 'in archive recovery');
      for (const key of ['cluster_state', 'system_identifier', 'bindir', 'pgdata_version', 'hostname', 'user'] as const) {
        expect(sqlFacts[key], key).toEqual(toolsFacts[key]);
      }
    }
  });
});

describe('pg_ctl status answered in the shell where the answer is certain, by pg_ctl otherwise', () => {
  afterAll(async () => {
    await stopAllClusters();
  });

  it('says what pg_ctl says for every kind of data directory', async () => {
    const cluster = await startCluster({ port: 21518 });
    const uid = Number(execaSync('id', ['-u', PG_OS_USER]).stdout);
    const gid = Number(execaSync('id', ['-g', PG_OS_USER]).stdout);
    const root = await mkdtemp(join(tmpdir(), 'pgplay-ctl-'));
    await chown(root, uid, gid);
    const gone = spawnSync('true').pid; // a pid that has just exited: a stale pid file
    const cases: Array<{ name: string; pidFile?: string; version?: false; dir?: string; answered: boolean }> = [
      { name: 'running', dir: cluster.pgdata, answered: true },
      { name: 'stopped, no pid file', answered: true },
      { name: 'stale pid file', pidFile: `${gone}\n`, answered: true },
      { name: 'pid of another user (kill: EPERM)', pidFile: '1\n', answered: true },
      { name: 'pid of a live process that is no postmaster of it', pidFile: `${cluster.pid}\n`, answered: true },
      { name: 'empty pid file', pidFile: '', answered: false },
      { name: 'garbage in the pid file', pidFile: 'x12\n', answered: false },
      { name: 'single-user backend', pidFile: `-${cluster.pid}\n`, answered: false },
      { name: 'no PG_VERSION', version: false, answered: false },
      { name: 'no directory', dir: join(root, 'nothing'), answered: true },
    ];
    try {
      for (const c of cases) {
        let dir = c.dir;
        if (!dir) {
          dir = join(root, c.name.replace(/\W+/g, '-'));
          await mkdir(dir);
          if (c.version !== false) await writeFile(join(dir, 'PG_VERSION'), '15\n');
          if (c.pidFile !== undefined) await writeFile(join(dir, 'postmaster.pid'), c.pidFile);
          for (const f of ['', 'PG_VERSION', 'postmaster.pid']) await chown(join(dir, f), uid, gid).catch(() => undefined);
        }
        const ours = execaSync('runuser', ['-u', PG_OS_USER, '--', '/bin/sh', '-c', `${PG_CTL_STATUS_FUNCTION}\npgplay_ctl_status "$1"; echo "$ctl_rc $ctl_pid"`, 'sh', dir]);
        const pgCtl = execaSync('runuser', ['-u', PG_OS_USER, '--', join(cluster.bindir, 'pg_ctl'), 'status', '-D', dir], { reject: false });
        const [rc = '', pid = ''] = ours.stdout.split(' ');
        expect(rc !== '', `${c.name}: answered without pg_ctl`).toBe(c.answered);
        if (rc === '') continue;
        expect(`${c.name}: ${rc} ${pid}`).toBe(`${c.name}: ${pgCtl.exitCode} ${/\(PID: (\d+)\)/.exec(pgCtl.stdout)?.[1] ?? ''}`);
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
