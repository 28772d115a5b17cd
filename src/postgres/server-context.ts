/**
 * What the server helpers of this folder (service, pg_ctl, probes, logs, watches) need from the step
 * that calls them. An action passes its ServerContext, which has all of it; declaring the subset here
 * keeps src/postgres below the engine (the engine imports these helpers, never the other way round).
 */
import type { Client } from 'pg';
import type { Host } from '../model/inventory.js';
import type { Transport } from '../transports/types.js';

/** Which server a step connects to, and how long it may take. */
export interface PostgresConnectRequest {
  /** The inventory host (default: the step's). */
  hostName?: string;
  database?: string;
  port?: number;
  /**
   * Give up opening a connection, or checking that a reused one still answers, after this long (ms): a
   * caller with a deadline of its own (a wait) passes what is left of it. Default: the client's own limits.
   */
  timeoutMs?: number;
}

export interface ServerContext {
  host: Host;
  hosts: Record<string, Host>;
  transport: Transport;
  /** Transport of another host (e.g. the upstream a standby streams from). */
  transportFor(hostName: string): Transport;
  timeoutMs?: number;
  signal: AbortSignal;
  /** Progress lines shown under the step in verbose output. */
  log(line: string): void;
  /** Connects to PostgreSQL on a host (default: this one) as the superuser. Caller ends the client. */
  connectPostgres(options?: PostgresConnectRequest): Promise<Client>;
  /**
   * The run's idle connection to a host's server at the inventory's socket, if one is open (nothing is
   * opened for it); the caller ends it. A probe asks it instead of starting psql (facts-read.ts).
   */
  idleConnection?(hostName: string): Promise<Client | undefined>;
  /**
   * For a read right after this step changed a host's server (started, restarted, promoted it): the run's
   * idle connection to it, else a new one at the inventory's socket that the run keeps for the steps after
   * (the engine closes the others around the step). Only after the change: one opened before it would be
   * kept although the change made it stale. Undefined where none opens; the caller ends it.
   */
  connectionAfterChange?(hostName: string): Promise<Client | undefined>;
  /**
   * Said by an apply once its changes are over (a started or restarted server is up, or a stopped one gone,
   * even while pg_ctl has yet to notice and return: postmaster-watch.ts; a promotion's command returned) and
   * what it does next only reads, such as its probe of the server it changed: the engine's one-primary
   * invariant then reads the other servers beside that probe rather than after the step (engine/guards.ts). It ends the
   * apply's changes for every server, not only this host's: never before a change the apply still makes,
   * on any server (a read taken after this point stands for after the step).
   */
  changeEnded?(): void;
}

/** A confirmation a destructive outcome asks for (the shape of Confirmation | undefined). */
export interface Confirmation {
  message: string;
  key?: string;
}
