import type { Duplex } from 'node:stream';
import type { Host } from '../model/inventory.js';
import { resolveJumpHost } from './ssh/jump.js';
import type { ExecOptions, ExecResult, FileStat, ReadOptions, Transport, WriteFileOptions, WriteFileResult } from './types.js';

export interface TransportFactoryOptions {
  hosts: Record<string, Host>;
  resolveSecret(ref: unknown): Promise<string | undefined>;
  /** Things the user must hear about a connection, e.g. a host key added under accept-new. */
  notice?(hostName: string, line: string): void;
  /** Local transports created with the same scope share their command helpers (a run's: local.ts). */
  helperScope?: object;
}

/**
 * Picks the transport a host's `connection.transport` names; a jump host is an inventory name or
 * [user@]address[:port]. Each kind is imported on its first call: the SSH transport brings ssh2
 * (~40 ms to load, bundled), the local one node's child processes, and a run needs only the kinds its hosts use.
 */
export function createTransport(host: Host, options: TransportFactoryOptions): Transport {
  if (host.connection.transport === 'local') {
    return new DeferredTransport(host.name, 'local', () => import('./local.js').then(({ LocalTransport }) => new LocalTransport(host, { helperScope: options.helperScope })));
  }
  const jumpSpec = host.connection.jump;
  // Resolved now, not on first use: a jump host the inventory does not name is an error before any step.
  const jump = jumpSpec ? resolveJumpHost(jumpSpec, options.hosts, host) : undefined;
  return new DeferredTransport(host.name, 'ssh', () =>
    import('./ssh.js').then(
      ({ SshTransport }) =>
        new SshTransport(host, {
          resolveSecret: options.resolveSecret,
          jump,
          onHostKeyAdded: (line) => options.notice?.(host.name, `added host key to known_hosts: ${line}`),
        }),
    ),
  );
}

/** A transport whose module is imported, and which is built, on its first call. */
class DeferredTransport implements Transport {
  private loaded: Promise<Transport> | undefined;

  constructor(
    readonly hostName: string,
    readonly kind: 'local' | 'ssh',
    private readonly load: () => Promise<Transport>,
  ) {}

  private transport(): Promise<Transport> {
    return (this.loaded ??= this.load());
  }

  async connect(): Promise<void> {
    return (await this.transport()).connect();
  }

  /** Settles once the module is loaded and the transport has started opening. */
  async preconnect(): Promise<void> {
    // A module that fails to load fails the next call the same way (the rejected promise is kept); a
    // preconnect that throws all the same (it should not) is the next call's to report, never this one's.
    await this.transport()
      .then((t) => t.preconnect?.())
      .catch(() => undefined);
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

  async openUnixSocket(socketPath: string, options: { become?: string }): Promise<Duplex | undefined> {
    return (await this.transport()).openUnixSocket?.(socketPath, options);
  }

  /** Nothing to stop when the transport was never used. */
  async close(): Promise<void> {
    if (this.loaded) await (await this.loaded).close();
  }
}

export type { Transport };
