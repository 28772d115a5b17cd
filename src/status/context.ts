/**
 * The status context: the inventory loaded and checked as for a run, one transport per host (the
 * engine's: local or SSH), the facts of every host read once up front (an unreachable host is a fact,
 * not an error), and lazily the repository's `pgbackrest info` and the run journal. It only reads.
 */
import type { Client } from 'pg';
import type { ActionContext } from '../actions/types.js';
import { readInfo } from '../actions/pgbackrest/common.js';
import { resolveInput } from '../actions/pgbackrest/input.js';
import { PgbackrestRunner } from '../actions/pgbackrest/runner.js';
import { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import { gatherFacts } from '../engine/facts.js';
import { mapLimit } from '../engine/pool.js';
import { checkSecretValue, locateSecretRefs } from '../engine/secret-checks.js';
import { createSecretResolver } from '../engine/secrets.js';
import { listRuns, type JournalRun } from '../journal/reader.js';
import { resolveHosts } from '../load/hosts.js';
import { loadInventory } from '../load/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { connectPostgres } from '../postgres/client.js';
import { ConnectionPool } from '../postgres/connection-pool.js';
import type { StanzaInfo } from '../postgres/pgbackrest-info.js';
import { createTransport } from '../transports/index.js';
import type { Transport } from '../transports/types.js';
import type { StatusContext } from './types.js';

export interface StatusContextRequest {
  inventoryFile: string;
  stateDir: string;
  redactor: Redactor;
  env?: NodeJS.ProcessEnv;
  now?: Date;
  /** Time allowed for one remote read (default 30 s): a hung host must not hang the monitoring. */
  timeoutMs?: number;
  /** Opens a PostgreSQL connection (default postgres/client.ts connectPostgres; tests count them). */
  connect?: typeof connectPostgres;
}

export interface OpenStatusContext extends StatusContext {
  close(): Promise<void>;
}

/** The host pgBackRest commands run on, as nightly-backup.yml runs them: the repository host, else the primary. */
export function backupHostName(ctx: Pick<StatusContext, 'inventory' | 'hosts'>): string | undefined {
  const repo = ctx.inventory.backup?.repoHost;
  if (repo) return repo;
  return Object.values(ctx.hosts).find((h) => h.role === 'primary')?.name;
}

export async function openStatusContext(request: StatusContextRequest): Promise<OpenStatusContext> {
  const { inventory } = await loadInventory(request.inventoryFile);
  const resolveSecret = createSecretResolver(request.redactor, request.env);
  // As for a run: every secret is resolved (and known to the redactor) before any host is touched.
  for (const located of locateSecretRefs(inventory)) checkSecretValue(`inventory ${request.inventoryFile}:`, located, await resolveSecret(located.ref));
  const hosts = resolveHosts(inventory);
  const timeoutMs = request.timeoutMs ?? 30_000;
  const signal = new AbortController().signal;
  const transports = new Map<string, Transport>();
  const transport = (name: string): Transport => {
    let t = transports.get(name);
    if (!t) {
      const host = hostOf(hosts, name);
      t = createTransport(host, { hosts, resolveSecret });
      transports.set(name, t);
    }
    return t;
  };
  const facts = new Map<string, HostFacts>();
  await mapLimit(Object.keys(hosts), 10, async (name) => {
    facts.set(name, await gatherFacts(hostOf(hosts, name), transport(name)));
  });

  // One connection per host for all the checks (several query the primary), as a run's pool gives: one
  // socket bridge per host instead of one per query; each query's read-only transaction ends before the next.
  const connections = new ConnectionPool();
  const connect = request.connect ?? connectPostgres;
  let info: Promise<StanzaInfo> | undefined;
  let runs: JournalRun[] | undefined;
  const ctx: OpenStatusContext = {
    inventory,
    hosts,
    now: request.now ?? new Date(),
    facts: (name) => facts.get(name) ?? { reachable: false, error: 'not in the inventory', pgdata_present: false, running: false },
    async query(name, sql) {
      const host = hostOf(hosts, name);
      const client: Client = await connections.lease(name, 'postgres', async () =>
        connect(transport(name), host, { password: await resolveSecret(host.postgres.password), connectTimeoutMs: timeoutMs }),
      );
      try {
        // A read-only transaction: status must not be able to change anything, whatever the query.
        await client.query('BEGIN READ ONLY');
        await client.query(`SET LOCAL statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
        const r = await client.query<Record<string, unknown>>(sql);
        await client.query('ROLLBACK');
        return r.rows;
      } finally {
        // Gives it back to the pool: one left in a failed transaction is closed at its next lease (connection-pool.ts).
        await client.end().catch(() => undefined);
      }
    },
    exec: (name, argv, options = {}) => transport(name).exec(argv, { cwd: '/', timeoutMs, ...options }),
    pgbackrestInfo() {
      info ??= (async () => {
        const name = backupHostName(ctx);
        if (!name) throw new PgplayError({ code: 'SEMANTIC', message: 'no repository host and no primary to run pgbackrest info on' });
        const host = hostOf(hosts, name);
        const { stanza, config } = resolveInput({ command: 'info' }, host, inventory);
        // The runner needs only these parts of an action's context; it never reaches the rest.
        const runnerContext = {
          host,
          inventory,
          transport: transport(name),
          signal,
          timeoutMs,
          log: () => undefined,
          secret: resolveSecret,
        } satisfies Partial<ActionContext>;
        return readInfo(new PgbackrestRunner(runnerContext as unknown as ActionContext, stanza, config));
      })();
      return info;
    },
    journalRuns() {
      runs ??= listRuns(request.stateDir).runs.filter((r) => r.header.cluster === inventory.cluster && !r.header.check);
      return runs;
    },
    async close() {
      await connections.closeAll();
      await Promise.all([...transports.values()].map((t) => t.close().catch(() => undefined)));
    },
  };
  return ctx;
}

function hostOf(hosts: Record<string, Host>, name: string): Host {
  const host = hosts[name];
  if (!host) throw new PgplayError({ code: 'SEMANTIC', message: `no host ${name} in the inventory` });
  return host;
}
