import type { Redactor } from '../core/redact.js';
import type { RunOutcome } from '../engine/run.js';
import { createTransport } from '../transports/index.js';
import { EarlyConnections } from './early-connect.js';
import type { RunRequest } from './request.js';
import { readRunInventory, type RunInventory } from './run-inventory.js';

export type { RunRequest };

/**
 * The composition root of a run: loads and validates everything (exit 2 before touching any host),
 * gives the engine its collaborators, opens the journal and takes the locks, then lets the engine
 * gather facts and run; whatever happens, releases the locks, closes the transports and ends the journal.
 *
 * In two parts, so that the connections start as early as they can: this module reads the inventory
 * and starts them, importing little; the rest (run-from-inventory.ts: the playbook's loaders, the engine)
 * is imported after that, while the SSH handshakes and the local command helpers start.
 */
export async function runPlaybook(request: RunRequest): Promise<RunOutcome & { runId: string; redactor: Redactor; closed: Promise<void> }> {
  // The run's local transports share their command helpers (transports/local.ts).
  const helperScope = {};
  // The handshakes start once the inventory is read; the transports are the run's (or closed on a refusal).
  const early = new EarlyConnections(request.createTransport ?? ((host, hosts, resolveSecret) => createTransport(host, { hosts, resolveSecret, helperScope })));
  const connectEarly = request.limit === undefined && request.resume === undefined;
  let read: RunInventory;
  let rest: typeof import('./run-from-inventory.js');
  try {
    read = await readRunInventory(request);
    if (connectEarly) await early.start(read.inventory, read.resolveSecret);
    rest = await import('./run-from-inventory.js');
  } catch (e) {
    await early.close();
    throw e;
  }
  return rest.runFromInventory(request, read, early, helperScope);
}
