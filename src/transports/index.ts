import type { Duplex } from 'node:stream';
import type { Host } from '../model/inventory.js';
import type { LocalTransport } from './local.js';
import { SshTransport } from './ssh.js';
import { resolveJumpHost } from './ssh/jump.js';
import type { ExecOptions, ExecResult, FileStat, ReadOptions, Transport, WriteFileOptions, WriteFileResult } from './types.js';

export interface TransportFactoryOptions {
  hosts: Record<string, Host>;
  resolveSecret(ref: unknown): Promise<string | undefined>;
  /** Things the user must hear about a connection, e.g. a host key added under accept-new. */
  notice?(hostName: string, line: string): void;
}

/** Picks the transport a host's `connection.transport` names; a jump host is an inventory name or [user@]address[:port]. */
export function createTransport(host: Host, options: TransportFactoryOptions): Transport {
  if (host.connection.transport === 'local') return new DeferredLocalTransport(host);
  const jumpSpec = host.connection.jump;
  const jump = jumpSpec ? resolveJumpHost(jumpSpec, options.hosts, host) : undefined;
  return new SshTransport(host, {
    resolveSecret: options.resolveSecret,
    jump,
    onHostKeyAdded: (line) => options.notice?.(host.name, `added host key to known_hosts: ${line}`),
  });
}

/**
 * The local transport, imported on its first call: it brings execa, which takes ~100 ms to load, and
 * a run whose hosts are all reached over SSH never needs it.
 */
class DeferredLocalTransport implements Transport {
  readonly kind = 'local' as const;
  readonly hostName: string;
  private loaded: Promise<LocalTransport> | undefined;

  constructor(private readonly host: Host) {
    this.hostName = host.name;
  }

  private transport(): Promise<LocalTransport> {
    return (this.loaded ??= import('./local.js').then(({ LocalTransport }) => new LocalTransport(this.host)));
  }

  async connect(): Promise<void> {
    return (await this.transport()).connect();
  }

  async exec(argv: string[], options?: ExecOptions): Promise<ExecResult> {
    return (await this.transport()).exec(argv, options);
  }

  async readFile(path: string, options?: ReadOptions): Promise<Buffer | null> {
    return (await this.transport()).readFile(path, options);
  }

  async writeFile(path: string, data: string | Buffer, options?: WriteFileOptions): Promise<WriteFileResult> {
    return (await this.transport()).writeFile(path, data, options);
  }

  async stat(path: string, options?: ReadOptions): Promise<FileStat> {
    return (await this.transport()).stat(path, options);
  }

  async openStream(argv: string[], options?: { become?: string }): Promise<Duplex> {
    return (await this.transport()).openStream(argv, options);
  }

  /** Nothing to stop when the transport was never used. */
  async close(): Promise<void> {
    if (this.loaded) await (await this.loaded).close();
  }
}

export type { Transport };
