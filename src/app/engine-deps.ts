import { resolve } from 'node:path';
import { getAction } from '../actions/registry.js';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { gatherFacts } from '../engine/facts.js';
import type { EngineDeps } from '../engine/run-context.js';
import { clientLibrary, connectPostgres } from '../postgres/client.js';
import { createRenderer } from '../render/index.js';
import { createTransport, type Transport } from '../transports/index.js';
import type { LoadedRun } from './load-run.js';
import type { RunRequest } from './request.js';

/**
 * The engine's collaborators: the shipped actions, the template renderer, transports (SSH or local,
 * or a test's), fact gathering, secrets and PostgreSQL connections. `notice`: what a transport must
 * tell the human (a host key trusted on first use).
 */
export function engineDeps(
  request: RunRequest,
  loaded: LoadedRun,
  notice: (host: string, line: string) => void,
  /** A host's transport whose handshake started before the run (early-connect.ts). */
  started: (hostName: string) => Transport | undefined = () => undefined,
  /** Where the run's local transports share their command helpers (those started early share it too). */
  helperScope: object,
): EngineDeps {
  const { hosts, resolveSecret, playbookDir } = loaded;
  return {
    renderer: createRenderer({ templateDirs: [resolve(playbookDir, 'templates'), playbookDir, SHIPPED_TEMPLATES] }),
    getAction,
    createTransport: (host) => started(host.name) ?? (request.createTransport ?? ((h) => createTransport(h, { hosts, resolveSecret, notice, helperScope })))(host),
    gatherFacts: request.gatherFacts ?? gatherFacts,
    resolveSecret,
    connectPostgres: async (transport, host, options) =>
      connectPostgres(transport, host, { ...options, password: await resolveSecret(host.postgres.password) }),
    prepareConnections: () => clientLibrary().then(() => undefined, () => undefined),
    ask: request.ask,
    loadInclude: loaded.loadInclude,
  };
}
