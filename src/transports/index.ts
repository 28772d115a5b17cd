import type { Host } from '../model/inventory.js';
import { LocalTransport } from './local.js';
import { SshTransport } from './ssh.js';
import { resolveJumpHost } from './ssh/jump.js';
import type { Transport } from './types.js';

export interface TransportFactoryOptions {
  hosts: Record<string, Host>;
  resolveSecret(ref: unknown): Promise<string | undefined>;
  /** Things the user must hear about a connection, e.g. a host key added under accept-new. */
  notice?(hostName: string, line: string): void;
}

/** Picks the transport a host's `connection.transport` names; a jump host is an inventory name or [user@]address[:port]. */
export function createTransport(host: Host, options: TransportFactoryOptions): Transport {
  if (host.connection.transport === 'local') return new LocalTransport(host);
  const jumpSpec = host.connection.jump;
  const jump = jumpSpec ? resolveJumpHost(jumpSpec, options.hosts, host) : undefined;
  return new SshTransport(host, {
    resolveSecret: options.resolveSecret,
    jump,
    onHostKeyAdded: (line) => options.notice?.(host.name, `added host key to known_hosts: ${line}`),
  });
}

export type { Transport };
