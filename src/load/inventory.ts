import { PgplayErrors } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import { applyInventoryDefaults } from './defaults.js';
import { checkInventory } from './inventory-semantic.js';
import type { ParseCache } from './parse-cache.js';
import { loadYamlFileCached, sortErrors, type LoadedDocument } from './yaml.js';

export interface LoadedInventory {
  inventory: Inventory;
  doc: LoadedDocument<Inventory>;
}

/** The parse cache's name for "this text has the inventory's shape" (under the build the entry names). */
const INVENTORY_SHAPE = 'inventory';

/**
 * Reads, validates and checks an inventory; throws PgplayErrors holding every problem found. With a parse
 * cache, a text that passed the schema under this build is not validated again (the meaning checks
 * always run: they read other files' state, e.g. the playbook's hosts, and cost little).
 */
export async function loadInventory(file: string, cache?: ParseCache): Promise<LoadedInventory> {
  const load = await loadYamlFileCached<Inventory>(file, cache);
  const { doc } = load;
  // The schema and its validator load only for a text not known to have passed them.
  const errors = load.passed.has(INVENTORY_SHAPE) ? sortErrors(checkInventory(doc)) : (await import('./inventory-errors.js')).inventoryErrors(doc);
  if (errors.length) throw new PgplayErrors(errors);
  // Before the defaults below change the data: the cache keeps what the file says.
  await load.remember(INVENTORY_SHAPE);
  return { inventory: applyInventoryDefaults(doc.data), doc };
}
