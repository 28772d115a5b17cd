import type { Host } from '../model/inventory.js';
import { LocalTransport } from './local.js';
import { SshTransport } from './ssh.js';
import type { Transport } from './types.js';

export interface TransportFactoryOptions {
  hosts: Record<string, Host>;
  resolveSecret(ref: unknown): Promise<string | undefined>;
}

/** Picks the transport a host's `connection.transport` names; a jump host is looked up by inventory name. */
export function createTransport(host: Host, options: TransportFactoryOptions): Transport {
  if (host.connection.transport === 'local') return new LocalTransport(host);
  const jumpName = host.connection.jump;
  const jump = jumpName ? options.hosts[jumpName] : undefined;
  return new SshTransport(host, { resolveSecret: options.resolveSecret, jump });
}

export type { Transport };
