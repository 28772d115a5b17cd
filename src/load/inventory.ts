import { PgplayErrors, type PgplayError } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import { validateDocument } from '../schema/validate.js';
import { inventoryDocument } from '../schema/documents.js';
import { applyInventoryDefaults } from './defaults.js';
import { checkInventory } from './semantic.js';
import type { ParseCache } from './parse-cache.js';
import { loadYamlFileCached, sortErrors, type LoadedDocument } from './yaml.js';

export interface LoadedInventory {
  inventory: Inventory;
  doc: LoadedDocument<Inventory>;
}

/** Schema errors, or (only when the shape is right, so the checks can trust it) meaning errors. */
export function inventoryErrors(doc: LoadedDocument): PgplayError[] {
  const shape = validateDocument(doc, inventoryDocument());
  if (shape.length) return shape;
  return sortErrors(checkInventory(doc as LoadedDocument<Inventory>));
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
  const errors = load.passed.has(INVENTORY_SHAPE) ? sortErrors(checkInventory(doc)) : inventoryErrors(doc);
  if (errors.length) throw new PgplayErrors(errors);
  // Before the defaults below change the data: the cache keeps what the file says.
  await load.remember(INVENTORY_SHAPE);
  return { inventory: applyInventoryDefaults(doc.data), doc };
}
