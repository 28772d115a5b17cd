/**
 * Test rig: separate machines. Each machine is an sshd in its own mount namespace (`unshare --mount
 * --propagation private`) on its own loopback address and port 22, with `UsePAM yes` as Debian ships
 * it, and its own copies of the paths Debian's PostgreSQL and pgBackRest packages use:
 *
 * - /etc is an overlay over this machine's /etc (private writes: /etc/pgbackrest.conf as the package
 *   ships it, /etc/pgbackrest absent until something creates it, /etc/ssh with the machine's own host
 *   key, the one its sshd serves);
 * - every user's ~/.ssh/authorized_keys is honoured (pgBackRest's trust between machines as postgres);
 *   root logs in with the rig's client key;
 * - /etc/postgresql, /var/lib/postgresql (also the postgres user's home, for .pgpass and ~/.ssh),
 *   /var/run/postgresql, /var/log/postgresql, /var/lib/pgbackrest, /var/log/pgbackrest and
 *   /var/spool/pgbackrest are bind mounts of per-machine directories, empty and owned as the packages
 *   own them;
 * - /var/lib is an overlay over this machine's /var/lib like /etc: pgplay's host lock on a repository
 *   host lives beside backup.repoPath (/var/lib/.pgplay/locks for /var/lib/pgbackrest), and two rigs
 *   (or a rig and this machine) must not share it;
 * - root's ~/.bashrc and ~/.profile are Debian's (base-files), not those of the machine running the tests;
 * - /tmp is the machine's own (mode 1777), as on any real host: pgBackRest's default lock-path is
 *   /tmp/pgbackrest, so a shared /tmp would let `pgbackrest stop` on one machine stop the stanza on
 *   every machine, and lock files of one rig collide with another's.
 *
 * Within each machine PostgreSQL 15 is created by Debian's `pg_createcluster 15 main -p 5432` listening
 * on the machine's address, and started with `pg_ctlcluster` (no systemd here). The network is shared:
 * every machine reaches every other at its address.
 *
 * Tests reach a machine's files only through pgplay (over SSH) or `nsenter` into its namespace
 * (Machine.exec). Teardown stops every postmaster by the pid in its postmaster.pid (read inside the
 * namespace), unmounts, stops sshd by its pid, then any process left in the namespace by pid, and
 * removes the rig's directory.
 */
import { execa } from 'execa';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { debianRootStartupFiles, keygen, rootStartupFiles, SSHD, sshdListening } from './sshd.js';
import { writeSshdConfig } from './sshd-config.js';

/** No other test uses 127.0.42.0/24: machine N is 127.0.42.N. */
export const MACHINE_SUBNET = '127.0.42';
export const PG_VERSION = 15;
export const PG_CLUSTER = 'main';
export const PG_PORT = 5432;
export const PGDATA = `/var/lib/postgresql/${PG_VERSION}/${PG_CLUSTER}`;
export const CONFIG_DIR = `/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}`;
/** The `pgdata` layout's cluster (config in PGDATA, started with pg_ctl), inside the private /var/lib/postgresql. */
export const PGDATA_LAYOUT_PGDATA = `/var/lib/postgresql/${PG_VERSION}/data`;

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The private directories of a machine, owned and moded as Debian's packages create them. */
const PRIVATE_DIRS: ReadonlyArray<{ path: string; user: 'root' | 'postgres'; mode: number }> = [
  { path: '/etc/postgresql', user: 'postgres', mode: 0o755 },
  { path: '/var/lib/postgresql', user: 'postgres', mode: 0o755 },
  { path: '/var/run/postgresql', user: 'postgres', mode: 0o2775 },
  { path: '/var/log/postgresql', user: 'root', mode: 0o1775 },
  { path: '/var/lib/pgbackrest', user: 'postgres', mode: 0o750 },
  { path: '/var/log/pgbackrest', user: 'postgres', mode: 0o750 },
  { path: '/var/spool/pgbackrest', user: 'postgres', mode: 0o750 },
];

export interface MachineSpec {
  name: string;
  /** Defaults to 127.0.42.<position + 1>. */
  address?: string;
  /** Create and start PostgreSQL 15 `main` (default true); false for e.g. a repository machine. */
  postgres?: boolean;
  /**
   * How the cluster is made (default debian): `debian` by pg_createcluster and pg_ctlcluster; `pgdata` as
   * PGDG's RHEL packages or a hand-built server have it: initdb into PGDATA_LAYOUT_PGDATA with the config
   * in PGDATA and the server log in PGDATA/log (logging_collector), started with pg_ctl.
   */
  layout?: 'debian' | 'pgdata';
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface Machine {
  name: string;
  address: string;
  /** The sshd's pid; its mount namespace is the machine. */
  pid: number;
  /** `mnt:[inode]` of the machine's mount namespace. */
  namespace: string;
  /** `ssh-ed25519 AAAA...` of this machine's own host key. */
  hostPublicKey: string;
  /** The cluster's PGDATA (per layout; also where a machine without a cluster would have it). */
  pgdata: string;
  /** Where the cluster's postgresql.conf and pg_hba.conf are. */
  configDir: string;
  /** Runs argv inside the machine's mount namespace, as root or as `user` (runuser). Never throws on exit status. */
  exec(argv: string[], options?: { user?: string; input?: string; env?: Record<string, string> }): Promise<ExecResult>;
  /** Runs SQL with psql inside the machine as postgres, through its socket; unaligned tuples only. */
  psql(sql: string, options?: { host?: string; port?: number; env?: Record<string, string> }): Promise<string>;
  /** The pid in PGDATA/postmaster.pid read inside the machine, when there is one. */
  postmasterPid(pgdata?: string): Promise<number | undefined>;
  /** Every process that lives in this machine's mount namespace. */
  pids(): Promise<number[]>;
  /** Everything this machine's sshd logged. */
  sshdLog(): string;
  /**
   * The machine dies as in a power cut: its postmasters (by the pids in their postmaster.pid), then its sshd,
   * then whatever else lives in its namespace, each killed by pid with SIGKILL. Its files stay for teardown.
   */
  crash(): Promise<void>;
}

export interface Machines {
  machines: Record<string, Machine>;
  dir: string;
  /** SSH port of every machine. */
  port: 22;
  /** Client key authorized for root on every machine. */
  identityFile: string;
  /** One line per machine with its own host key. */
  knownHosts: string;
  /** How long startMachines took, from the first directory to the last server accepting connections. */
  startupMs: number;
  /** Every process of every machine (sshd and its sessions, postmasters and their children). */
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

interface Ids {
  uid: number;
  gid: number;
}

async function osIds(user: string): Promise<Ids> {
  const id = async (flag: string) => Number((await execa('id', [flag, user])).stdout.trim());
  return { uid: await id('-u'), gid: await id('-g') };
}

/** Nothing may already listen on port 22 of a machine's address (or on every address). */
async function assertPort22Free(addresses: string[]): Promise<void> {
  const { stdout } = await execa('ss', ['-ltnH', 'sport = :22']);
  const taken = stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[3])
    .filter((local): local is string => local !== undefined)
    .filter((local) => ['0.0.0.0:22', '*:22', '[::]:22', ...addresses.map((a) => `${a}:22`)].includes(local));
  if (taken.length) throw new Error(`port 22 is already taken (${taken.join(', ')}): the machines rig needs it on ${addresses.join(', ')}`);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts the machines in parallel; if any fails, whatever did start is stopped again. */
export async function startMachines(specs: MachineSpec[]): Promise<Machines> {
  const started = Date.now();
  const addresses = specs.map((s, i) => s.address ?? `${MACHINE_SUBNET}.${i + 1}`);
  await assertPort22Free(addresses);
  const dir = await mkdtemp(join(tmpdir(), 'pgplay-machines-'));
  await chmod(dir, 0o755);
  const [postgres, root] = await Promise.all([osIds('postgres'), osIds('root')]);
  const identityFile = join(dir, 'id_ed25519');
  keygen(identityFile, '');
  const clientKey = await readFile(`${identityFile}.pub`, 'utf8');

  const settled = await Promise.allSettled(
    specs.map((spec, i) => startMachine({ spec, address: addresses[i]!, dir: join(dir, spec.name), clientKey, postgres, root })),
  );
  const up = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  let stopping: Promise<void> | undefined;
  // Idempotent: a test may tear the rig down itself and afterAll then calls stop again.
  const stop = () =>
    (stopping ??= (async () => {
      const stopped = await Promise.allSettled(up.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
      const failed = stopped.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    })());
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, up.map((m) => `${m.machine.address} ${m.machine.hostPublicKey}\n`).join(''), { mode: 0o600 });
  const machines = Object.fromEntries(up.map((m) => [m.machine.name, m.machine]));
  return {
    machines,
    dir,
    port: 22,
    identityFile,
    knownHosts,
    startupMs: Date.now() - started,
    pids: async () => (await Promise.all(up.map((m) => m.machine.pids()))).flat(),
    stop,
  };
}

interface Started {
  machine: Machine;
  stop(): Promise<void>;
}

async function startMachine(o: { spec: MachineSpec; address: string; dir: string; clientKey: string; postgres: Ids; root: Ids }): Promise<Started> {
  const { spec, address, dir } = o;
  const ssh = join(dir, 'ssh');
  await mkdir(ssh, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o755);
  // /etc: an overlay, so that what a test or pgplay writes there stays on this machine.
  const etcUpper = join(dir, 'etc-upper');
  const etcWork = join(dir, 'etc-work');
  const varLibUpper = join(dir, 'var-lib-upper');
  const varLibWork = join(dir, 'var-lib-work');
  await Promise.all([mkdir(etcUpper), mkdir(etcWork), mkdir(varLibUpper), mkdir(varLibWork)]);
  // What pgplay (or an earlier rig) left in this machine's own /var/lib/.pgplay is not this machine's.
  if (existsSync('/var/lib/.pgplay')) await execa('mknod', [join(varLibUpper, '.pgplay'), 'c', '0', '0']);
  // A fresh Debian install has no /etc/pgbackrest: hide one the test machine may have (a whiteout).
  if (existsSync('/etc/pgbackrest')) await execa('mknod', [join(etcUpper, 'pgbackrest'), 'c', '0', '0']);
  const binds: Array<{ source: string; target: string }> = [];
  for (const d of PRIVATE_DIRS) {
    const source = join(dir, 'fs', d.path.slice(1).replace(/\//g, '-'));
    await mkdir(source, { recursive: true });
    const owner = d.user === 'postgres' ? o.postgres : o.root;
    await chown(source, owner.uid, o.postgres.gid);
    await chmod(source, d.mode);
    binds.push({ source, target: d.path });
  }

  const hostKey = join(ssh, 'ssh_host_ed25519_key');
  keygen(hostKey, '');
  const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  // The machine's /etc/ssh holds its own host key, the one its sshd serves (whatever reads
  // /etc/ssh/ssh_host_*_key.pub there, e.g. pgplay setting up pgBackRest's known_hosts, gets the truth);
  // this machine's other host keys are hidden (whiteouts).
  const etcSsh = join(etcUpper, 'ssh');
  await mkdir(etcSsh);
  for (const type of ['rsa', 'ecdsa', 'dsa']) {
    for (const suffix of ['', '.pub']) {
      if (existsSync(`/etc/ssh/ssh_host_${type}_key${suffix}`)) await execa('mknod', [join(etcSsh, `ssh_host_${type}_key${suffix}`), 'c', '0', '0']);
    }
  }
  await copyFile(hostKey, join(etcSsh, 'ssh_host_ed25519_key'));
  await copyFile(`${hostKey}.pub`, join(etcSsh, 'ssh_host_ed25519_key.pub'));
  const authorizedKeys = join(ssh, 'authorized_keys');
  await writeFile(authorizedKeys, o.clientKey, { mode: 0o600 });
  // As Debian ships it: with PAM, accounts with a locked password (postgres: "!") may log in by key.
  const config = await writeSshdConfig(join(ssh, 'sshd_config'), {
    listen: [`${address}:22`],
    hostKey,
    pidFile: join(ssh, 'sshd.pid'),
    // Every user's own ~/.ssh/authorized_keys (pgBackRest's trust between machines, as postgres);
    // root logs in with the rig's client key.
    authorizedKeys: '.ssh/authorized_keys',
    extra: ['Match User root', `  AuthorizedKeysFile ${authorizedKeys}`],
    usePam: true,
  });

  // root's shell start-up files are the machine's own (see debianRootStartupFiles).
  binds.push(...(await debianRootStartupFiles(dir)));

  const mounts = [
    `mount -t overlay overlay -o ${q(`lowerdir=/etc,upperdir=${etcUpper},workdir=${etcWork}`)} /etc`,
    `mount -t overlay overlay -o ${q(`lowerdir=/var/lib,upperdir=${varLibUpper},workdir=${varLibWork}`)} /var/lib`,
    ...binds.map((b) => `mount --bind ${q(b.source)} ${q(b.target)}`),
    ...(await privateTmpMounts(dir, ssh)),
  ];
  // unshare execs sh, which execs sshd: the child's pid is the sshd's, and its namespace the machine.
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-ec', `${mounts.join('\n')}\nexec ${SSHD} -D -e -f ${q(config)}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH, LANG: 'C.UTF-8' },
  });
  const log: string[] = [];
  const namespacePath = `/proc/${child.pid}/ns/mnt`;
  const machine: Machine = {
    name: spec.name,
    address,
    pid: child.pid!,
    namespace: '',
    hostPublicKey,
    pgdata: spec.layout === 'pgdata' ? PGDATA_LAYOUT_PGDATA : PGDATA,
    configDir: spec.layout === 'pgdata' ? PGDATA_LAYOUT_PGDATA : CONFIG_DIR,
    exec: (argv, options = {}) => nsExec(namespacePath, argv, options),
    psql: async (sql, options = {}) => {
      const argv = ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', options.host ?? '/var/run/postgresql', '-p', String(options.port ?? PG_PORT), '-d', 'postgres', '-c', sql];
      const r = await nsExec(namespacePath, argv, { user: 'postgres', env: options.env });
      if (r.exitCode !== 0) throw new Error(`psql on ${spec.name} failed (${r.exitCode}): ${r.stderr}`);
      return r.stdout.trim();
    },
    postmasterPid: async (pgdata = machine.pgdata) => {
      const r = await nsExec(namespacePath, ['head', '-n', '1', `${pgdata}/postmaster.pid`], {});
      const pid = Number(r.stdout.trim());
      return r.exitCode === 0 && pid > 0 ? pid : undefined;
    },
    pids: async () => (machine.namespace ? pidsInNamespace(machine.namespace) : []),
    sshdLog: () => log.join(''),
    crash: async () => {
      const postmasters = await runningPostmasters(machine);
      const inside = await pidsInNamespace(machine.namespace);
      postmasters.forEach((p) => signal(p, 'SIGKILL'));
      signal(child.pid!, 'SIGKILL');
      inside.forEach((p) => signal(p, 'SIGKILL'));
      if (!(await gone([...postmasters, ...inside, child.pid!], 10_000))) throw new Error(`machine ${spec.name}: processes ${inside.filter(alive).join(', ')} did not end`);
      crashed = true;
    },
  };
  let crashed = false;
  // A crashed machine has no namespace left to enter: only its sshd child is reaped.
  const stop = () => (crashed ? reap(child) : stopMachine(machine, child));
  try {
    await sshdListening(child, [address], log);
    machine.namespace = await readlink(namespacePath);
    if (spec.postgres !== false) await (spec.layout === 'pgdata' ? initdbCluster(machine) : createCluster(machine));
  } catch (e) {
    await stop();
    throw new Error(`machine ${spec.name} (${address}) did not start: ${(e as Error).message}`);
  }
  return { machine, stop };
}

/**
 * The machine's own /tmp. Mounted last, because the sources of the other binds live under the rig's
 * directory, which may itself be under /tmp; the sshd's own files (config, host key, root's
 * authorized_keys, pid file) stay reachable at their paths by a bind carried into the private /tmp.
 */
async function privateTmpMounts(dir: string, ssh: string): Promise<string[]> {
  const source = join(dir, 'fs', 'tmp');
  await mkdir(source, { recursive: true });
  await chmod(source, 0o1777);
  const mounts: string[] = [];
  const within = relative('/tmp', ssh);
  if (!within.startsWith('..') && !isAbsolute(within)) {
    const carried = join(source, within);
    await mkdir(carried, { recursive: true });
    mounts.push(`mount --bind ${q(ssh)} ${q(carried)}`);
  }
  mounts.push(`mount --rbind ${q(source)} /tmp`);
  return mounts;
}

async function nsExec(namespacePath: string, argv: string[], options: { user?: string; input?: string; env?: Record<string, string> }): Promise<ExecResult> {
  const as = options.user ? ['runuser', '-u', options.user, '--'] : [];
  // A clean environment: nothing of the test runner's (PGHOST, PGPORT, ...) leaks into the machine.
  const env = ['env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  const r = await execa('nsenter', [`--mount=${namespacePath}`, '--', ...as, ...env, ...argv], {
    reject: false,
    cwd: '/',
    input: options.input,
    stdin: options.input === undefined ? 'ignore' : undefined,
  });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs argv in the machine; throws with its output when it fails. */
async function mustExec(m: Machine, argv: string[], user?: string): Promise<void> {
  const r = await m.exec(argv, { user });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
}

/** Debian's way: pg_createcluster (initdb, config in /etc/postgresql) then pg_ctlcluster start. */
async function createCluster(m: Machine): Promise<void> {
  const run = (argv: string[], user?: string) => mustExec(m, argv, user);
  // initdb --no-sync: a test machine's cluster is thrown away, and fsyncing it costs seconds on a busy disk.
  await run(['pg_createcluster', String(PG_VERSION), PG_CLUSTER, '-p', String(PG_PORT), '-o', `listen_addresses=${m.address}`, '--', '--no-sync']);
  // postgresql-common takes a dotted address for a number and writes it unquoted (a syntax error for
  // the server), as a DBA would notice at the first start: quote it in the file, as they would.
  const conf = `/etc/postgresql/${PG_VERSION}/${PG_CLUSTER}/postgresql.conf`;
  await run(['sed', '-i', `s/^listen_addresses = ${m.address.replace(/\./g, '\\.')}\\b/listen_addresses = '${m.address}'/`, conf], 'postgres');
  await run(['pg_ctlcluster', String(PG_VERSION), PG_CLUSTER, 'start']);
}

/**
 * The pgdata layout, as PGDG's RHEL packages (postgresql-15-setup initdb) or a DBA building by hand do
 * it: initdb as postgres with the config in PGDATA and the server log in PGDATA/log, started by pg_ctl.
 */
async function initdbCluster(m: Machine): Promise<void> {
  const bindir = `/usr/lib/postgresql/${PG_VERSION}/bin`;
  const run = (argv: string[]) => mustExec(m, argv, 'postgres');
  await run(['mkdir', '-p', '-m', '0700', m.pgdata]);
  // --no-sync: a test machine's cluster is thrown away. PGDG's setup script uses these auth methods.
  await run([`${bindir}/initdb`, '-D', m.pgdata, '--auth-local=peer', '--auth-host=scram-sha-256', '--no-sync', '--no-instructions']);
  const settings = [
    `listen_addresses = '${m.address}'`,
    `port = ${PG_PORT}`,
    "unix_socket_directories = '/var/run/postgresql'",
    'logging_collector = on',
    "log_directory = 'log'",
    "log_filename = 'postgresql-%a.log'",
  ];
  await run(['sh', '-c', `printf '%s\\n' ${settings.map(q).join(' ')} >> ${q(`${m.pgdata}/postgresql.conf`)}`]);
  // -l: what the server says before its logging collector takes over (and keeps pg_ctl's stdout free).
  await run([`${bindir}/pg_ctl`, '-D', m.pgdata, '-l', `${m.pgdata}/startup.log`, '-w', '-s', 'start']);
}

/** Pids whose mount namespace is `namespace` (`mnt:[inode]`), from /proc. */
async function pidsInNamespace(namespace: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const ns = await readlink(`/proc/${entry}/ns/mnt`).catch(() => undefined);
    if (ns === namespace) out.push(Number(entry));
  }
  return out;
}

/** A process that exists and is not a zombie (an exited child not yet reaped counts as gone). */
export function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits until a killed child has exited (so it is reaped). */
async function reap(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
}

/** Polls until every pid is gone; false when some are still alive after `ms`. */
async function gone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (pids.every((p) => !alive(p))) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pids of the postmasters running in a machine: each postmaster.pid found inside it, if that process lives there. */
async function runningPostmasters(m: Machine): Promise<number[]> {
  const inside = new Set(await pidsInNamespace(m.namespace));
  const found = await m.exec(['find', '/var/lib/postgresql', '-maxdepth', '4', '-name', 'postmaster.pid']);
  const postmasters: number[] = [];
  for (const file of found.stdout.split('\n').filter(Boolean)) {
    const pid = await m.postmasterPid(file.replace(/\/postmaster\.pid$/, ''));
    if (pid !== undefined && inside.has(pid)) postmasters.push(pid);
  }
  return postmasters;
}

/**
 * Stops one machine, everything by pid: each postmaster named by a postmaster.pid inside the machine
 * (fast shutdown, then immediate, then SIGKILL), the mounts, the sshd, and last anything still in the
 * namespace (a session or command left behind). Once no process holds the namespace it is gone.
 */
async function stopMachine(m: Machine, child: ChildProcess): Promise<void> {
  // Whatever goes wrong, everything else is still stopped; the problems are thrown at the end.
  const problems: string[] = [];
  if (m.namespace) {
    const postmasters = await runningPostmasters(m);
    for (const [sig, ms] of [['SIGINT', 60_000], ['SIGQUIT', 10_000], ['SIGKILL', 10_000]] as const) {
      if (await gone(postmasters, 0)) break;
      postmasters.forEach((p) => signal(p, sig));
      if (await gone(postmasters, ms)) break;
    }
    // The binds sit on the /etc overlay (/etc/postgresql) and on /var: the last mounted goes first.
    const targets = ['/etc', '/var/lib', ...PRIVATE_DIRS.map((d) => d.path), ...rootStartupFiles(), '/tmp'].reverse();
    const unmounted = await m.exec(['umount', '--lazy', ...targets]);
    if (unmounted.exitCode !== 0) problems.push(`umount in ${m.name} exited ${unmounted.exitCode}: ${unmounted.stderr.trim()}`);
  }
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  if (m.namespace) {
    const left = await pidsInNamespace(m.namespace);
    left.forEach((p) => signal(p, 'SIGKILL'));
    if (!(await gone(left, 10_000))) problems.push(`processes ${left.filter(alive).join(', ')} did not end`);
  }
  if (problems.length) throw new Error(`machine ${m.name}: ${problems.join('; ')}`);
}
