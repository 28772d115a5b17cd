import { resolveHosts } from '../load/hosts.js';
import type { Host, Inventory } from '../model/inventory.js';
import type { Transport } from '../transports/types.js';

/**
 * SSH handshakes started as soon as the inventory is read, so that they run while the playbook is
 * loaded and validated, the journal opened and the state directory locked, instead of after all that:
 * the run's first command on a host (its lock, its facts) then finds the connection up.
 *
 * Only where connecting changes nothing: hosts whose key is checked strictly (under accept-new a first
 * connection appends to known_hosts, and a run refused for a bad playbook must have changed nothing),
 * and local hosts (their pre-connect starts the PGDATA owner's command helper, which runs nothing until
 * asked: the facts' first command then finds it up, ~100 ms of runuser and perl spent while the
 * playbook loads); and only a run of every host (no --limit, no --resume, which may bring one): a host left out is not
 * contacted. A handshake that fails is reported by the host's first use, as a later one would be;
 * the run's transports are these very ones (take), and those never taken are closed (close).
 */
export class EarlyConnections {
  private readonly open = new Map<string, Transport>();

  constructor(
    private readonly create: (host: Host, hosts: Record<string, Host>, resolveSecret: (ref: unknown) => Promise<string | undefined>) => Transport,
  ) {}

  /**
   * Starts the handshake of every host it may: called with the inventory once its secrets are resolved.
   * Returns once each has started (its transport's module loaded, its helper spawned or its socket
   * opening), not when they are done: the run loads the rest of its modules after that, while they go on.
   */
  async start(inventory: Inventory, resolveSecret: (ref: unknown) => Promise<string | undefined>): Promise<void> {
    let hosts: Record<string, Host>;
    try {
      hosts = resolveHosts(inventory);
    } catch {
      return; // The run reports it, with its own message, and contacts nobody.
    }
    // A local run loads nothing of SSH's.
    const ssh = Object.values(hosts).some((h) => h.connection.transport === 'ssh') ? await import('../transports/ssh/host-key.js') : undefined;
    const starting: Array<void | Promise<void>> = [];
    for (const host of Object.values(hosts)) {
      if (host.connection.transport === 'ssh' && ssh?.hostKeyPolicy(host.connection).acceptNew) continue;
      try {
        const transport = this.create(host, hosts, resolveSecret);
        this.open.set(host.name, transport);
        starting.push(transport.preconnect?.());
      } catch {
        // A connection the run cannot describe (a jump host it does not know) fails at its first use.
      }
    }
    await Promise.all(starting);
  }

  /** Whether the host's connection was started here and is not yet handed over (the run need not start it again). */
  holds(hostName: string): boolean {
    return this.open.has(hostName);
  }

  /** The host's transport with its handshake under way, handed over once (the run closes it then). */
  take(hostName: string): Transport | undefined {
    const transport = this.open.get(hostName);
    this.open.delete(hostName);
    return transport;
  }

  /** Closes those never handed over (a run refused before its first step, or hosts it did not use). */
  async close(): Promise<void> {
    const left = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(left.map((t) => t.close()));
  }
}
