/**
 * Test rig: a real OpenSSH server on a free loopback port, listening on several loopback addresses
 * so that each address is a "host". Keys (ed25519 host key, client key) and a strict known_hosts
 * live in a temp dir. Everything the rig starts is stopped by pid, never by name.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { appendFile, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { ConnectionConfig, Host } from '../../src/model/inventory.js';
import { debianPg15 } from './hosts.js';
import { writeSshdConfig } from './sshd-config.js';

export const SSHD = '/usr/sbin/sshd';

export interface SshdOptions {
  /** Loopback addresses to listen on, e.g. ['127.0.0.2', '127.0.0.3']. */
  addresses: string[];
  port?: number;
  /** sshd MaxSessions (sessions per connection); OpenSSH's default is 10. */
  maxSessions?: number;
  /** sshd LogLevel; DEBUG1 shows forwarded (jump host) connections. */
  logLevel?: 'INFO' | 'VERBOSE' | 'DEBUG1';
  /** Extra sshd_config lines. */
  extraConfig?: string[];
}

export interface Sshd {
  port: number;
  addresses: string[];
  dir: string;
  /** Strict known_hosts: one `[address]:port` line per address. */
  knownHosts: string;
  /** Client private key authorized for root. */
  identityFile: string;
  /** The host key as `ssh-keygen -l -E sha256` prints it: SHA256:... */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA...` of the host key. */
  hostPublicKey: string;
  pid: number;
  /** Everything sshd (and its per-connection children) logged so far. */
  logs(): string;
  /** Pids of the per-connection processes (direct children of the listener). */
  connectionPids(): number[];
  /** SIGKILLs a connection process and everything under it, so its TCP connection drops. */
  killConnection(pid: number): void;
  /** Generates another ed25519 client key in the rig dir; authorizes it unless told not to. */
  generateKey(name: string, options?: { passphrase?: string; authorize?: boolean }): Promise<{ path: string; publicKey: string }>;
  stop(): Promise<void>;
}

export async function startSshd(options: SshdOptions): Promise<Sshd> {
  if (options.addresses.length === 0) throw new Error('startSshd needs at least one address');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'pgplay-sshd-'));
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const identityFile = join(dir, 'id_ed25519');
  keygen(hostKey, '');
  keygen(identityFile, '');
  const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const hostKeyFingerprint = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  const authorizedKeys = join(dir, 'authorized_keys');
  await writeFile(authorizedKeys, await readFile(`${identityFile}.pub`, 'utf8'), { mode: 0o600 });

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (options.port ? 1 : 5); attempt++) {
    const port = options.port ?? (await freePort(options.addresses));
    try {
      const started = await launch(dir, port, hostKey, authorizedKeys, options);
      const knownHosts = join(dir, 'known_hosts');
      await writeFile(knownHosts, options.addresses.map((a) => `[${a}]:${port} ${hostPublicKey}\n`).join(''), { mode: 0o600 });
      return {
        port,
        addresses: options.addresses,
        dir,
        knownHosts,
        identityFile,
        hostKeyFingerprint,
        hostPublicKey,
        pid: started.child.pid!,
        logs: () => started.log.join(''),
        connectionPids: () => childPids(started.child.pid!),
        killConnection: (pid: number) => {
          for (const p of [pid, ...descendants(pid)]) killQuietly(p, 'SIGKILL');
        },
        generateKey: async (name, keyOptions = {}) => {
          const path = join(dir, name);
          keygen(path, keyOptions.passphrase ?? '');
          const publicKey = (await readFile(`${path}.pub`, 'utf8')).trim();
          if (keyOptions.authorize !== false) await appendFile(authorizedKeys, `${publicKey}\n`);
          return { path, publicKey };
        },
        stop: async () => {
          await stopProcessTree(started.child);
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (e) {
      lastError = e as Error;
    }
  }
  await rm(dir, { recursive: true, force: true });
  throw lastError ?? new Error('sshd did not start');
}

/** A Host for an address of the rig: ssh transport, root login with the rig's key, become postgres. */
export function sshHost(sshd: Sshd, name: string, address: string, connection: Partial<ConnectionConfig> = {}): Host {
  return {
    name,
    address,
    role: 'primary',
    postgres: debianPg15(),
    connection: {
      transport: 'ssh',
      user: 'root',
      port: sshd.port,
      identityFile: sshd.identityFile,
      knownHosts: sshd.knownHosts,
      hostKeyChecking: 'strict',
      become: 'postgres',
      agent: false,
      ...connection,
    },
    vars: {},
  };
}

export function keygen(path: string, passphrase: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'pgplay-test', '-f', path], { stdio: 'ignore' });
}

interface Launched {
  child: ChildProcess;
  log: string[];
}

/** root's shell start-up files that this machine has: the targets of debianRootStartupFiles' binds. */
export function rootStartupFiles(): string[] {
  return ['/root/.bashrc', '/root/.profile'].filter((f) => existsSync(f));
}

/**
 * Binds that give an sshd's sessions root's shell start-up files as Debian's base-files installs them
 * (copies in `dir`), for those this machine has (a bind needs a target). A remote machine's are its own,
 * and the ones of the machine running the tests may be slow: a CI image whose ~/.bashrc runs
 * `pyenv init` costs about 0.5 s on every SSH command (sshd's bash reads ~/.bashrc), which made the SSH
 * files most of the suite's time.
 */
export async function debianRootStartupFiles(dir: string): Promise<Array<{ source: string; target: string }>> {
  const binds: Array<{ source: string; target: string }> = [];
  for (const target of rootStartupFiles()) {
    const source = join(dir, `root-${basename(target)}`);
    const shipped = `/usr/share/base-files/dot${basename(target)}`;
    if (existsSync(shipped)) await copyFile(shipped, source);
    else await writeFile(source, '');
    binds.push({ source, target });
  }
  return binds;
}

async function launch(dir: string, port: number, hostKey: string, authorizedKeys: string, options: SshdOptions): Promise<Launched> {
  const config = await writeSshdConfig(join(dir, 'sshd_config'), {
    listen: options.addresses.map((a) => `${a}:${port}`),
    hostKey,
    pidFile: join(dir, 'sshd.pid'),
    authorizedKeys,
    usePam: false,
    maxSessions: options.maxSessions,
    logLevel: options.logLevel,
    extra: options.extraConfig,
  });
  // In a mount namespace of its own only for root's start-up files (debianRootStartupFiles); everything
  // else is this machine's. unshare execs sh, which execs sshd: the child's pid is the sshd's.
  const binds = (await debianRootStartupFiles(dir)).map((b) => `mount --bind '${b.source}' '${b.target}'`);
  const child = binds.length
    ? spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-ec', `${binds.join('\n')}\nexec ${SSHD} -D -e -f '${config}'`], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log: string[] = [];
  const file = createWriteStream(join(dir, 'sshd.log'));
  await sshdListening(child, options.addresses, log, (chunk) => file.write(chunk)).catch(async (e: Error) => {
    await stopProcessTree(child);
    throw e;
  });
  return { child, log };
}

/**
 * Resolves once sshd (started with -e, stderr piped) says it listens on every address; rejects when
 * it cannot bind or exits first. Everything it logs, before and after, is appended to `log`.
 */
export function sshdListening(child: ChildProcess, addresses: string[], log: string[], onChunk?: (chunk: string) => void): Promise<void> {
  const pending = new Set(addresses);
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => fail(new Error(`sshd did not listen on ${[...pending].join(', ')} within 10s:\n${log.join('')}`)), 10_000);
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(err);
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      log.push(chunk);
      onChunk?.(chunk);
      if (done) return;
      if (/Bind to port \d+ on \S+ failed|Cannot bind any address/.test(chunk)) {
        fail(new Error(`sshd could not bind:\n${log.join('')}`));
        return;
      }
      for (const m of log.join('').matchAll(/Server listening on (\S+) port (\d+)/g)) pending.delete(m[1]!);
      if (pending.size === 0) {
        done = true;
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => fail(new Error(`sshd exited (${code ?? signal}) before listening:\n${log.join('')}`)));
    child.once('error', (err) => fail(err));
  });
}

/** A port that is free on every address (the kernel picks it on the first). */
export async function freePort(addresses: string[]): Promise<number> {
  for (;;) {
    const port = await listenOnce(addresses[0]!, 0);
    let free = true;
    for (const a of addresses.slice(1)) {
      if ((await listenOnce(a, port).catch(() => -1)) === -1) {
        free = false;
        break;
      }
    }
    if (free) return port;
  }
}

function listenOnce(address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, address, () => {
      const chosen = (server.address() as { port: number }).port;
      server.close(() => resolve(chosen));
    });
  });
}

export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    // ps exits 1 when there are no children.
    return [];
  }
}

export function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const child of childPids(pid)) out.push(child, ...descendants(child));
  return out;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Stops sshd and whatever still runs under it (connections, remote commands), by pid. */
async function stopProcessTree(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  // Collect the tree first: once the listener is gone its children are reparented and untraceable.
  const tree = descendants(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  killQuietly(pid, 'SIGTERM');
  for (const p of tree) killQuietly(p, 'SIGTERM');
  const timer = setTimeout(() => {
    killQuietly(pid, 'SIGKILL');
    for (const p of tree) killQuietly(p, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}
