/**
 * The first part of loading a run: its inventory, read (through the parse cache) and checked, with every
 * secret it references resolved. Kept apart from load-run.ts, which loads the playbook, and light in what
 * it imports: the run's connections start from this (app/early-connect.ts), and their handshakes and
 * command helpers then start while the playbook's loaders and the engine load.
 */
import { resolve } from 'node:path';
import { Redactor } from '../core/redact.js';
import { checkSecretValue, locateSecretRefs } from '../engine/secret-checks.js';
import { createSecretResolver } from '../engine/secrets.js';
import { gitInfo } from '../journal/git.js';
import { loadInventory } from '../load/inventory.js';
import { parseCacheIn, type ParseCache } from '../load/parse-cache.js';
import type { Inventory } from '../model/inventory.js';
import { BUILD_STAMP } from '../schema/build-stamp.js';
import type { RunRequest } from './request.js';

export interface RunInventory {
  playbookFile: string;
  inventoryFile: string;
  inventory: Inventory;
  /** The state directory's parse cache (none without a state directory). */
  cache?: ParseCache;
  /** The playbook's git commit, read by a child process started at once (a journaled run only). */
  git?: ReturnType<typeof gitInfo>;
  redactor: Redactor;
  resolveSecret(ref: unknown): Promise<string | undefined>;
}

/** Exit 2 before touching any host when the inventory or one of its secrets is wrong. */
export async function readRunInventory(request: RunRequest): Promise<RunInventory> {
  const playbookFile = resolve(request.playbookFile);
  const inventoryFile = resolve(request.inventoryFile);
  // git runs as a child process: started now, it is done by the time the journal is opened.
  const git = request.stateDir ? gitInfo(playbookFile) : undefined;
  // Unchanged files are neither parsed nor validated again (load/parse-cache.ts); a run without a state directory keeps no cache.
  const cache = request.stateDir ? parseCacheIn(request.stateDir, BUILD_STAMP) : undefined;
  const { inventory } = await loadInventory(inventoryFile, cache);
  const redactor = request.redactor ?? new Redactor();
  const resolveSecret = createSecretResolver(redactor, request.env);
  // Resolve every secret the inventory references first: a missing one fails before any host is
  // touched, and each value is known to the redactor before any message (even a usage error) can quote it.
  // Each is also checked (no line break, not empty): exit 2 before any step, never at the step using it.
  for (const located of locateSecretRefs(inventory)) checkSecretValue(`inventory ${inventoryFile}:`, located, await resolveSecret(located.ref));
  return { playbookFile, inventoryFile, inventory, cache, git, redactor, resolveSecret };
}
