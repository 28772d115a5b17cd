/** Fresh facts of one host, read when an action needs them. */
import type { Client } from 'pg';
import { PgplayError } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';
import type { ServerContext } from './server-context.js';
import { parseFacts } from './facts.js';
import { readFactsOutput } from './facts-read.js';
import { requirePgdata, runAsOwner } from './owner.js';

/**
 * Fresh facts of a host, read now (not the ones gathered at the start of the run): actions decide on
 * the state they find, which an earlier step (or a person) may have changed since. Its data directory
 * and server only: what the host is (name, user, bindir) does not change during a run.
 */
export async function probe(ctx: ServerContext, hostName = ctx.host.name): Promise<HostFacts> {
  return probeWith(ctx, hostName, ctx.idleConnection?.bind(ctx));
}

/**
 * probe() right after the step changed the server (started, restarted, promoted it): over a connection the
 * run opens to it then and keeps for the steps after, instead of a psql of the script's own (~35 ms, more
 * on a server that has just started), where the host is on this machine (ServerContext.connectionAfterChange).
 */
export async function probeAfterChange(ctx: ServerContext, hostName = ctx.host.name): Promise<HostFacts> {
  return probeWith(ctx, hostName, (ctx.connectionAfterChange ?? ctx.idleConnection)?.bind(ctx));
}

async function probeWith(ctx: ServerContext, hostName: string, connection?: (hostName: string) => Promise<Client | undefined>): Promise<HostFacts> {
  const host = ctx.hosts[hostName] ?? (hostName === ctx.host.name ? ctx.host : undefined);
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: `no host ${hostName} in the inventory` });
  requirePgdata(host);
  const run = async (argv: string[], timeoutMs: number) => (await runAsOwner(ctx, argv, { host, timeoutMs })).stdout;
  return parseFacts(await readFactsOutput(host, { host: false }, run, connection && (() => connection(host.name))));
}

/** What a postgres step registers about the server it left behind. */
export function stateData(facts: HostFacts): Record<string, unknown> {
  const data: Record<string, unknown> = { running: facts.running };
  if (facts.pid !== undefined) data.pid = facts.pid;
  if (facts.in_recovery !== undefined) data.in_recovery = facts.in_recovery;
  if (facts.timeline !== undefined) data.timeline = facts.timeline;
  if (facts.version !== undefined) data.version = facts.version;
  return data;
}
