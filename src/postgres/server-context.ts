/**
 * What the server helpers of this folder (service, pg_ctl, probes, logs, watches) need from the step
 * that calls them. An action passes its ServerContext, which has all of it; declaring the subset here
 * keeps src/postgres below the engine (the engine imports these helpers, never the other way round).
 */
import type { Client } from 'pg';
import type { Host } from '../model/inventory.js';
import type { Transport } from '../transports/types.js';

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
  connectPostgres(options?: { hostName?: string; database?: string; port?: number }): Promise<Client>;
}

/** A confirmation a destructive outcome asks for (the shape of Confirmation | undefined). */
export interface Confirmation {
  message: string;
  key?: string;
}
