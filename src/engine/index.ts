import { randomBytes } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { actions, getAction } from '../actions/registry.js';
import { parseDuration } from '../core/duration.js';
import { PgplayError } from '../core/errors.js';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { Redactor } from '../core/redact.js';
import { loadInventory } from '../load/inventory.js';
import { loadPlaybook } from '../load/playbook.js';
import { resolveParams } from '../load/params.js';
import { resolveHosts, selectHosts } from '../load/hosts.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { connectPostgres } from '../postgres/client.js';
import { createRenderer } from '../render/index.js';
import { createTransport } from '../transports/index.js';
import type { Transport } from '../transports/types.js';
import type { RunEvent } from './events.js';
import { gatherFacts } from './facts.js';
import { mapLimit } from './pool.js';
import { RunContext, type EngineDeps, type EngineOptions } from './run-context.js';
import { executeRun, type RunOutcome } from './run.js';
import { globalScope } from './scope.js';
import { collectSecretRefs, createSecretResolver } from './secrets.js';

export interface RunRequest {
  playbookFile: string;
  inventoryFile: string;
  params: Record<string, string>;
  check: boolean;
  diff: boolean;
  forks?: number;
  yes?: boolean;
  limit?: string[];
  tags?: string[];
  from?: string;
  timeout?: string;
  alreadyDone?: Set<string>;
  runId?: string;
  signal?: AbortSignal;
  onEvent(event: RunEvent): void;
  ask?(question: string): Promise<boolean>;
  /** Tests substitute transports (e.g. the fake one) and fact gathering. */
  createTransport?(host: Host): Transport;
  gatherFacts?(host: Host, transport: Transport): Promise<HostFacts>;
  env?: NodeJS.ProcessEnv;
}

export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Loads and validates everything (exit 2 before touching any host), then gathers facts and runs. */
export async function runPlaybook(request: RunRequest): Promise<RunOutcome & { runId: string; redactor: Redactor }> {
  const playbookFile = resolve(request.playbookFile);
  const inventoryFile = resolve(request.inventoryFile);
  const loadedInventory = await loadInventory(inventoryFile);
  const inventory = loadedInventory.inventory;
  const { playbook } = await loadPlaybook(playbookFile, { actions, inventory });
  const params = resolveParams(playbook.params ?? {}, request.params);
  const hosts = resolveHosts(inventory);
  if (request.limit) for (const name of request.limit) selectHosts(name, hosts);
  if (request.from && !playbook.steps.some((s) => s.id === request.from)) {
    throw new PgplayError({ code: 'USAGE', message: `--from: no step with id "${request.from}" in ${playbookFile}` });
  }

  const redactor = new Redactor();
  const resolveSecret = createSecretResolver(redactor, request.env);
  for (const [name, def] of Object.entries(playbook.params ?? {})) {
    if (def.secret && typeof params[name] === 'string') redactor.add(params[name] as string);
  }
  // Resolve every secret the inventory references up front: a missing one fails before any host is
  // touched, and each value is known to the redactor before anything can print it.
  for (const ref of collectSecretRefs(inventory)) await resolveSecret(ref);

  const playbookDir = dirname(playbookFile);
  const renderer = createRenderer({ templateDirs: [resolve(playbookDir, 'templates'), playbookDir, SHIPPED_TEMPLATES] });
  const deps: EngineDeps = {
    renderer,
    getAction,
    createTransport: request.createTransport ?? ((host) => createTransport(host, { hosts, resolveSecret })),
    gatherFacts: request.gatherFacts ?? gatherFacts,
    resolveSecret,
    connectPostgres: async (transport, host, options) =>
      connectPostgres(transport, host, { ...options, password: await resolveSecret(host.postgres.password) }),
    ask: request.ask,
    loadInclude: async (file, fromDir) => (await loadPlaybook(resolve(fromDir, file), { actions, inventory, included: true })).playbook,
  };
  const options: EngineOptions = {
    check: request.check,
    diff: request.diff,
    forks: request.forks ?? 10,
    yes: request.yes ?? false,
    limit: request.limit,
    tags: request.tags,
    from: request.from,
    defaultTimeoutMs: parseDuration(request.timeout ?? '1h', '--timeout'),
    alreadyDone: request.alreadyDone,
  };
  const runId = request.runId ?? newRunId();
  const signal = request.signal ?? new AbortController().signal;
  const run = new RunContext(
    runId,
    playbook,
    playbookFile,
    playbookDir,
    inventory,
    inventoryFile,
    hosts,
    params,
    {},
    options,
    deps,
    redactor,
    signal,
    request.onEvent,
  );
  run.vars = renderer.renderValue({ ...(inventory.vars ?? {}), ...(playbook.vars ?? {}) }, globalScope(run.scopeSources()), 'vars');

  try {
    const involved = Object.keys(hosts).filter((h) => !request.limit || request.limit.includes(h));
    await mapLimit(involved, options.forks, async (name) => run.refreshFacts(name));
    const outcome = await executeRun(run, (pattern) => selectHosts(pattern, hosts));
    return { ...outcome, runId, redactor };
  } finally {
    await run.closeTransports();
  }
}
