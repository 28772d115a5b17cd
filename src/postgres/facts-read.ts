/**
 * A host's data directory and server read again during a run (an engine refresh, an action's probe):
 * the facts script, whose psql costs ~35 ms of the ~50 ms a running server's read takes on the lab. Where
 * the run already holds an idle connection to the server at the inventory's socket, the script runs
 * without psql and the same query is asked over that connection instead; its rows become the very lines
 * the script's psql section prints, and parseFacts reads both alike.
 *
 * Which server answered must be as certain as with psql, which connects after the script found the
 * postmaster running:
 * - the connection was open, and answered (the pool's DISCARD ALL on lease), before the script ran; a
 *   postmaster that stopped or restarted since broke it (a new postmaster cannot start while the old
 *   one's backends live), and its query then fails;
 * - the script found the postmaster running and its socket (postmaster.pid) to be the inventory's, which
 *   is where the pool connects; the query comes after the script;
 * - the server names this PGDATA as its data_directory, by the path the inventory gives or the one the
 *   script resolved on the host.
 * Anything else (no idle connection, a query that fails or times out, another socket, another spelling
 * of the path, a stopped server's pg_control read by the script) and the script runs again in full, with
 * its psql, as it always did.
 */
import type { Client } from 'pg';
import type { Host } from '../model/inventory.js';
import { factsArgv, factsQuery, serverQueryLines, type FactsSections } from './facts.js';
import { majorFromPgVersionFile } from './versions.js';

/** Runs a facts script's argv as the PGDATA owner and returns its stdout. */
export type RunFactsScript = (argv: string[]) => Promise<string>;

/** An idle connection of the run's to the host's server at the inventory's socket (never one opened for this); undefined when there is none. */
export type IdleConnection = () => Promise<Client | undefined>;

/** How long the query over a held connection may take before the script reads instead. */
const QUERY_TIMEOUT_MS = 10_000;

/**
 * The facts script's output for `sections` (without the host section, the server-paths query), read
 * with the run's idle connection where it can be (see above), else by the script alone.
 */
export async function readFactsOutput(host: Host, sections: FactsSections, run: RunFactsScript, idle?: IdleConnection): Promise<string> {
  const byConnection = idle && host.pgdata !== undefined && (sections.server ?? true) && !sections.paths;
  if (byConnection) {
    const client = await idle().catch(() => undefined);
    if (client) {
      try {
        const out = await withQuery(await run(factsArgv(host, { ...sections, sqlByCaller: true })), host.pgdata!, client);
        if (out !== undefined) return out;
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
  return run(factsArgv(host, sections));
}

/** The script's output with the server's lines added from the query over `client`; undefined when the script must read them itself. */
async function withQuery(out: string, pgdata: string, client: Client): Promise<string | undefined> {
  const kv = new Map<string, string>();
  for (const line of out.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0 && !kv.has(line.slice(0, eq))) kv.set(line.slice(0, eq), line.slice(eq + 1));
  }
  if (kv.get('end') !== '1') return undefined;
  // A server that is not running: the script has read pg_control itself; nothing to ask.
  if (kv.get('running') !== '1') return out;
  if (kv.get('runsock_inventory') !== '1') return undefined;
  let rows: string[];
  try {
    const major = majorFromPgVersionFile(kv.get('pg_version_file') ?? '');
    const result = await client.query<string[]>({ text: factsQuery(major), rowMode: 'array', query_timeout: QUERY_TIMEOUT_MS } as never);
    rows = result.rows.map((r) => r[0]).filter((v): v is string => typeof v === 'string');
  } catch {
    return undefined;
  }
  const lines = serverQueryLines(rows, pgdata, kv.get('pgdata_real') ?? '');
  if (!lines) return undefined;
  // Before the script's last line, which says the output is whole.
  return out.replace(/^end=1$/m, () => `${lines.join('\n')}\nend=1`);
}
