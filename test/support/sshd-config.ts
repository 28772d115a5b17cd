/**
 * The sshd_config of every sshd the tests start (the shared-filesystem rig, the separate machines, the
 * postgres user's sshd of the SSH procedures): one place for what they share, their differences as
 * options.
 */
import { writeFile } from 'node:fs/promises';

export interface SshdConfigOptions {
  /** `address:port` pairs to listen on. */
  listen: string[];
  hostKey: string;
  pidFile: string;
  authorizedKeys: string;
  /** `UsePAM yes` as Debian ships it: then an account with a locked password ("!", as postgres) may log in by key. */
  usePam: boolean;
  /** Root logs in by key only (default), or not at all. */
  permitRootLogin?: 'prohibit-password' | 'no';
  /** TCP forwarding (jump hosts) and the sftp subsystem (default true). */
  forwardingAndSftp?: boolean;
  /** sshd MaxSessions (sessions per connection); unset leaves OpenSSH's default of 10. */
  maxSessions?: number;
  logLevel?: 'INFO' | 'VERBOSE' | 'DEBUG1';
  /** Extra lines, appended last. */
  extra?: string[];
}

export function sshdConfig(o: SshdConfigOptions): string {
  const lines = [
    ...o.listen.map((l) => `ListenAddress ${l}`),
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    `PermitRootLogin ${o.permitRootLogin ?? 'prohibit-password'}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    `UsePAM ${o.usePam ? 'yes' : 'no'}`,
    // The rigs' files live under /tmp, which StrictModes would reject as world-writable.
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    ...(o.forwardingAndSftp === false ? [] : ['AllowTcpForwarding yes', 'Subsystem sftp internal-sftp']),
    ...(o.maxSessions === undefined ? [] : [`MaxSessions ${o.maxSessions}`]),
    'MaxStartups 200',
    `LogLevel ${o.logLevel ?? 'VERBOSE'}`,
    ...(o.extra ?? []),
  ];
  return `${lines.join('\n')}\n`;
}

/** Writes the config (mode 0600: sshd refuses nothing, but it names key paths). */
export async function writeSshdConfig(path: string, o: SshdConfigOptions): Promise<string> {
  await writeFile(path, sshdConfig(o), { mode: 0o600 });
  return path;
}
