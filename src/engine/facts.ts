import { unknownFacts, type FactArea, type HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { factsScript, parseFacts } from '../postgres/facts.js';
import { parseServerPaths, serverPathsScript } from '../postgres/server-paths.js';
import type { Transport } from '../transports/types.js';

/**
 * Reads a host's facts in one round trip: one shell script, run as the PGDATA owner, prints everything
 * (PGDATA, postmaster, pg_controldata, and the server's own view when it runs, including where the
 * server at the inventory's socket and port keeps its files: server-paths.ts). An unreachable host
 * yields reachable=false with the reason instead of failing the whole run; its steps then fail by name.
 *
 * With `areas` (a refresh after a step that changed them) only those are read: the data directory, and
 * the server when 'server' is among them; the caller keeps the rest (mergeFacts).
 */
export async function gatherFacts(host: Host, transport: Transport, areas?: readonly FactArea[]): Promise<HostFacts> {
  const script = areas ? factsScript(host, { host: false, server: areas.includes('server') }) : factsScript(host, { paths: true }) + serverPathsScript(host);
  try {
    await transport.connect();
    const result = await transport.exec(['/bin/sh', '-c', script], {
      become: host.pgdata ? host.postgres.osUser : undefined,
      timeoutMs: 30_000,
    });
    if (result.timedOut) return { ...unknownFacts('reading facts timed out after 30s'), reachable: true };
    return areas ? parseFacts(result.stdout) : { ...parseFacts(result.stdout), ...parseServerPaths(result.stdout, host) };
  } catch (e) {
    return unknownFacts((e as Error).message);
  }
}
