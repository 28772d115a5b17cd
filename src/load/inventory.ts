import { PgplayErrors, type PgplayError } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import { validateDocument } from '../schema/validate.js';
import { inventoryDocument } from '../schema/documents.js';
import { applyInventoryDefaults } from './defaults.js';
import { checkInventory } from './semantic.js';
import { loadYamlFile, sortErrors, type LoadedDocument } from './yaml.js';

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

/** Reads, validates and checks an inventory; throws PgplayErrors holding every problem found. */
export async function loadInventory(file: string): Promise<LoadedInventory> {
  const doc = await loadYamlFile<Inventory>(file);
  const errors = inventoryErrors(doc);
  if (errors.length) throw new PgplayErrors(errors);
  return { inventory: applyInventoryDefaults(doc.data), doc };
}
