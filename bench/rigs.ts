/**
 * The benchmark's hosts: the tests' sshd rig (test/support/sshd.ts), started as often as needed,
 * because one sshd listens on at most 16 addresses (OpenSSH's MAX_LISTEN_SOCKS). Every instance
 * accepts the first instance's client key, and one known_hosts file lists every instance's host key
 * for its addresses, so each tool sees one identity and one strict known_hosts for all hosts.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../test/support/sshd.js';

/** sshd's compile-time limit on listening sockets. */
const MAX_ADDRESSES_PER_SSHD = 16;

export interface RigHost {
  name: string;
  address: string;
  port: number;
}

export interface Rigs {
  identityFile: string;
  knownHosts: string;
  sshds: Sshd[];
  stop(): Promise<void>;
}

export interface RigOptions {
  /** sshd MaxSessions: sessions per connection. */
  maxSessions: number;
  /** Where the merged known_hosts goes, and the sessions' empty HOME (see below). */
  dir: string;
}

/** Starts sshds for the given groups of hosts (each group one instance or more) and returns the hosts with their ports. */
export async function startRigs(
  groups: Array<Array<{ name: string; address: string }>>,
  options: RigOptions,
  /** Called before the first sshd starts, so an interrupted start can still be stopped. */
  onCreated?: (rigs: Rigs) => void,
): Promise<{ rigs: Rigs; hosts: RigHost[][] }> {
  const sshds: Sshd[] = [];
  // Sessions get an empty HOME, so root's login shell reads no rc file. This machine's
  // /root/.bashrc runs `pyenv init` (over half a second per session), which would measure pyenv,
  // not the tools; a stock root account reads nothing that slow.
  const home = join(options.dir, 'home');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const stop = async (): Promise<void> => {
    for (const s of sshds.splice(0)) await s.stop();
  };
  const rigs: Rigs = { identityFile: '', knownHosts: join(options.dir, 'known_hosts'), sshds, stop };
  onCreated?.(rigs);
  try {
    const hosts: RigHost[][] = [];
    for (const group of groups) {
      const placed: RigHost[] = [];
      for (let i = 0; i < group.length; i += MAX_ADDRESSES_PER_SSHD) {
        const chunk = group.slice(i, i + MAX_ADDRESSES_PER_SSHD);
        const sshd = await startSshd({
          addresses: chunk.map((h) => h.address),
          maxSessions: options.maxSessions,
          logLevel: 'INFO',
          extraConfig: [`SetEnv HOME=${home}`],
        });
        sshds.push(sshd);
        placed.push(...chunk.map((h) => ({ ...h, port: sshd.port })));
      }
      hosts.push(placed);
    }
    const first = sshds[0]!;
    const publicKey = await readFile(`${first.identityFile}.pub`, 'utf8');
    for (const s of sshds.slice(1)) await appendFile(join(s.dir, 'authorized_keys'), publicKey);
    const lines = await Promise.all(sshds.map((s) => readFile(s.knownHosts, 'utf8')));
    await writeFile(rigs.knownHosts, lines.join(''), { mode: 0o600 });
    rigs.identityFile = first.identityFile;
    return { rigs, hosts };
  } catch (e) {
    await stop();
    throw e;
  }
}
