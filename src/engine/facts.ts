import { unknownFacts, type FactArea, type HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { factsScript, parseFacts } from '../postgres/facts.js';
import { FACTS_TIMEOUT_MS, readAllFacts, readFactsOutput, type IdleConnection, type RunFactsScript } from '../postgres/facts-read.js';
import { parseServerPaths, serverPathsScript } from '../postgres/server-paths.js';
import type { Transport } from '../transports/types.js';

/**
 * Reads a host's facts in one round trip: one shell script, run as the PGDATA owner, prints everything
 * (PGDATA, postmaster, pg_controldata, and the server's own view when it runs, including where the
 * server at the inventory's socket and port keeps its files: server-paths.ts). An unreachable host
 * yields reachable=false with the reason instead of failing the whole run; its steps then fail by name.
 *
 * With `areas` (a refresh after a step that changed them) only those are read: the data directory, and
 * the server when 'server' is among them; the caller keeps the rest (mergeFacts). `connection`: a
 * connection of the run's to the host's server, which the read asks instead of starting psql
 * (facts-read.ts): for a read of `areas` an idle one the run holds, for a first read one it opens.
 */
export async function gatherFacts(host: Host, transport: Transport, areas?: readonly FactArea[], connection?: IdleConnection): Promise<HostFacts> {
  const run: RunFactsScript = async (argv, timeoutMs) => {
    const result = await transport.exec(argv, { become: host.pgdata ? host.postgres.osUser : undefined, timeoutMs });
    if (result.timedOut) throw new FactsTimedOut();
    return result.stdout;
  };
  try {
    await transport.connect();
    if (areas) return parseFacts(await readFactsOutput(host, { host: false, server: areas.includes('server') }, run, connection));
    const stdout = await readAllFacts(host, run, connection, () => ['/bin/sh', '-c', factsScript(host, { paths: true }) + serverPathsScript(host)]);
    return { ...parseFacts(stdout), ...parseServerPaths(stdout, host) };
  } catch (e) {
    if (e instanceof FactsTimedOut) return { ...unknownFacts(e.message), reachable: true };
    return unknownFacts((e as Error).message);
  }
}

class FactsTimedOut extends Error {
  constructor() {
    super(`reading facts timed out after ${FACTS_TIMEOUT_MS / 1000}s`);
  }
}
