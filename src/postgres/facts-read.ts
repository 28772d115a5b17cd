/**
 * A host's first full read over a connection the run opens for it: readAllFacts, below.
 *
 * A host's data directory and server read again during a run (an engine refresh, an action's probe):
 * the facts script, whose psql costs ~35 ms of the ~50 ms a running server's read takes on the lab. Where
 * the run already holds an idle connection to the server at the inventory's socket, the script runs
 * without psql and the same query is asked over that connection instead; its rows become the very lines
 * the script's psql section prints, and parseFacts reads both alike.
 *
 * Which server answered must be as certain as with psql, which connects after the script found the
 * postmaster running. The connection is believed only when all of this holds, else the script runs
 * again in full, with its psql, as it always did:
 * - it answered (the pool's DISCARD ALL on lease) before the script ran, and answers the query after it;
 * - its backend is a child of the postmaster the script found in this PGDATA's postmaster.pid, alive,
 *   whose working directory is this PGDATA and whose socket is the inventory's: the answer comes from
 *   that postmaster, not from another server that took the socket over;
 * - that postmaster is ready (or a standby's, accepting reads), not stopping: a smart shutdown refuses
 *   new connections, which psql would have reported, but keeps the ones it has;
 * - the server names this PGDATA as its data_directory (by the inventory's path or the resolved one) and
 *   gives every pg_control field the script then did not read;
 * - the run did not drop the connection meanwhile (a step began changing the server).
 */
import type { Client } from 'pg';
import type { Host } from '../model/inventory.js';
import { localSocketPresent, startupServerVersion } from './client.js';
import { leaseBroken } from './connection-pool.js';
import { factsArgv, factsQuery, factsScript, firstValues, serverQueryLines, type FactsSections } from './facts.js';
import { PATHS_SQL, serverPathsScript } from './server-paths.js';
import { majorFromPgVersionFile, majorFromServerVersion, majorFromVersionNum } from './versions.js';

/** Runs a facts script's argv as the PGDATA owner within `timeoutMs` and returns its stdout. */
export type RunFactsScript = (argv: string[], timeoutMs: number) => Promise<string>;

/** An idle connection of the run's to the host's server at the inventory's socket (never one opened for this); undefined when there is none. */
export type IdleConnection = () => Promise<Client | undefined>;

/** The whole read's limit, as the script alone had it. */
export const FACTS_TIMEOUT_MS = 30_000;

/** At most this long for the query over a held connection, within the read's limit. */
const QUERY_TIMEOUT_MS = 10_000;

/** postmaster.pid's states in which the server serves new connections. */
const SERVING = new Set(['ready', 'standby']);

/**
 * The facts script's output for `sections`, read with the run's idle connection where it can be (see
 * above), else by the script alone. Only a read of the data directory and server (`host: false`, no
 * server-paths query): the host section would lose the server's version and start pg_ctl instead.
 */
export async function readFactsOutput(host: Host, sections: FactsSections, run: RunFactsScript, idle?: IdleConnection): Promise<string> {
  const deadline = Date.now() + FACTS_TIMEOUT_MS;
  const left = () => Math.max(1, deadline - Date.now());
  const byConnection = idle && host.pgdata !== undefined && sections.host === false && (sections.server ?? true) && !sections.paths;
  if (byConnection) {
    const client = await idle().catch(() => undefined);
    if (client) {
      try {
        const backendPid = backendPidOf(client);
        const argv = factsArgv(host, { ...sections, sqlByCaller: true, backendPid });
        const out = await withQuery(await run(argv, left()), host.pgdata!, client, backendPid, left());
        if (out !== undefined) return out;
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
  return run(factsArgv(host, sections), left());
}

/** The pid of the connection's backend, as the server told it at connection start (pg's BackendKeyData; not in pg's types). */
function backendPidOf(client: Client): number | undefined {
  const pid = (client as Client & { processID?: unknown }).processID;
  return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The script's output with the server's lines added from the query over `client`; undefined when the script must read them itself. */
async function withQuery(out: string, pgdata: string, client: Client, backendPid: number | undefined, timeLeftMs: number): Promise<string | undefined> {
  const kv = firstValues(out.split('\n'));
  if (kv.get('end') !== '1') return undefined;
  // A server that is not running: the script has read pg_control itself; nothing to ask.
  if (kv.get('running') !== '1') return out;
  if (!tiedTo(kv, client, backendPid)) return undefined;
  const major = majorFromPgVersionFile(kv.get('pg_version_file') ?? '');
  const rows = await queryRows(client, factsQuery(major), timeLeftMs);
  return rows && withServerLines(out, kv, rows, pgdata);
}

/**
 * Whether the script's output ties the connection to this PGDATA's postmaster: its backend is a child of
 * the live postmaster in postmaster.pid (pg_ctl's too), which runs in this PGDATA, serves the inventory's
 * socket and is ready (or a standby's, accepting reads); and the run did not drop the connection meanwhile.
 */
function tiedTo(kv: Map<string, string>, client: Client, backendPid: number | undefined): boolean {
  const postmaster = kv.get('postmaster_pid');
  return (
    backendPid !== undefined &&
    postmaster !== undefined &&
    kv.get('pid_alive') === '1' &&
    kv.get('backend_parent') === postmaster &&
    (kv.get('pg_ctl_pid') ?? postmaster) === postmaster &&
    kv.get('postmaster_in_pgdata') === '1' &&
    kv.get('runsock_inventory') === '1' &&
    // PostgreSQL pads the state to one width ("ready   ").
    SERVING.has((kv.get('pm_status') ?? '').trim()) &&
    !leaseBroken(client)
  );
}

/** The one-column rows of `text` over `client`; undefined when it fails (the script then reads for itself). */
async function queryRows(client: Client, text: string, timeLeftMs: number): Promise<string[] | undefined> {
  try {
    const result = await client.query<string[]>({ text, rowMode: 'array', query_timeout: Math.min(QUERY_TIMEOUT_MS, timeLeftMs) } as never);
    return result.rows.map((r) => r[0]).filter((v): v is string => typeof v === 'string');
  } catch {
    return undefined;
  }
}

/** The script's output with the facts query's lines (serverQueryLines) before its last line; undefined as serverQueryLines. */
function withServerLines(out: string, kv: Map<string, string>, rows: string[], pgdata: string): string | undefined {
  const lines = serverQueryLines(rows, pgdata, kv.get('pgdata_real') ?? '');
  if (!lines) return undefined;
  // Before the script's last line, which says the output is whole.
  return out.replace(/^end=1$/m, () => `${lines.join('\n')}\nend=1`);
}

/**
 * A host's first, full read (the facts script with its server-paths section) with a connection the run
 * opens for it at the inventory's socket (`open`, the pool's: the run's SQL steps use it next), instead
 * of the script's psql (~20 ms of library loading and a backend of its own, beside the run's).
 *
 * The connection answers first: the facts query suited to the server's version (the one it reported as
 * the connection started, else asked) and the server-paths query in one. The script then reads
 * everything else, ties the connection's backend to this PGDATA's postmaster as for a later read (see
 * above), and resolves the paths the server gave (handed to it with the version, used only where the
 * postmaster runs). Its output is believed only when the tie holds and the same backend still answers
 * after the script; otherwise, or when no connection opens or answers within CONNECTION_ANSWER_MS (no
 * socket: a stopped server; another authentication; a server that does not answer), the script reads in
 * full with its psql, as it always did, with all of the read's time.
 */
export async function readAllFacts(host: Host, run: RunFactsScript, open: IdleConnection | undefined, full: () => string[]): Promise<string> {
  const client = host.pgdata !== undefined ? await open?.().catch(() => undefined) : undefined;
  if (client) {
    try {
      const deadline = Date.now() + FACTS_TIMEOUT_MS;
      const out = await withConnection(host, host.pgdata!, client, run, () => Math.max(1, deadline - Date.now()));
      if (out !== undefined) return out;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  // The script alone, with all of its time: what the connection took (a server that accepts and never
  // answers: stopped by a signal, a paused machine) is not taken from the read that reports it.
  return run(full(), FACTS_TIMEOUT_MS);
}

/**
 * How long the connection may take to open and to answer before the read goes to the script alone: a
 * local server answers in milliseconds; one that does not is left to psql, which reports how it fails.
 */
export const CONNECTION_ANSWER_MS = 3_000;

/**
 * A first read's connection (readAllFacts) to a host on this machine: opened by `connect` only where the
 * server's socket file is there (localSocketPresent), within CONNECTION_ANSWER_MS; undefined where it
 * does not open.
 */
export function connectionWhereSocket(host: Host, connect: (timeoutMs: number) => Promise<Client>): IdleConnection {
  return async () => ((await localSocketPresent(host)) ? connect(CONNECTION_ANSWER_MS).catch(() => undefined) : undefined);
}

async function withConnection(host: Host, pgdata: string, client: Client, run: RunFactsScript, left: () => number): Promise<string | undefined> {
  const backendPid = backendPidOf(client);
  const answerTime = () => Math.min(CONNECTION_ANSWER_MS, left());
  const major = majorFromServerVersion(startupServerVersion(client)) ?? (await askedMajor(client, answerTime()));
  if (major === undefined) return undefined;
  const rows = await queryRows(client, `${factsQuery(major)} union all ${PATHS_SQL}`, answerTime());
  const serverVersion = rows?.find((r) => r.startsWith('sql.server_version='))?.slice('sql.server_version='.length);
  if (!rows || serverVersion === undefined) return undefined;
  const answered = { serverVersion, pathRows: rows.filter((r) => r.startsWith('paths.')) };
  const out = await run(['/bin/sh', '-c', factsScript(host, { sqlByCaller: true, backendPid, answered }) + serverPathsScript(host)], left());
  const kv = firstValues(out.split('\n'));
  if (kv.get('end') !== '1' || kv.get('running') !== '1' || !tiedTo(kv, client, backendPid)) return undefined;
  // The backend the script found is still the one that answered: the connection answers after it too (a
  // backend gone meanwhile could have left its pid to another child of the same postmaster).
  if ((await queryRows(client, 'select pg_backend_pid()::text', answerTime()))?.[0] !== String(backendPid)) return undefined;
  return withServerLines(out, kv, rows.filter((r) => !r.startsWith('paths.')), pgdata);
}

/** The server's major, asked over `client` (a connection whose start did not say it); undefined when it does not answer. */
async function askedMajor(client: Client, timeLeftMs: number): Promise<number | undefined> {
  const versionNum = Number((await queryRows(client, "select current_setting('server_version_num')", timeLeftMs))?.[0]);
  return Number.isInteger(versionNum) && versionNum > 0 ? majorFromVersionNum(versionNum) : undefined;
}
