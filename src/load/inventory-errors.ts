/**
 * An inventory document's errors: its schema's, then (only when the shape is right, so the checks can
 * trust it) its meaning's. Apart from load/inventory.ts so that a run whose inventory the parse cache
 * knows valid loads neither the schema nor its validator (app/early-connect.ts starts the connections
 * before the rest of the run loads).
 */
import type { PgplayError } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import { validateDocument } from '../schema/validate.js';
import { inventoryDocument } from '../schema/documents.js';
import { checkInventory } from './inventory-semantic.js';
import { sortErrors, type LoadedDocument } from './yaml.js';

export function inventoryErrors(doc: LoadedDocument): PgplayError[] {
  const shape = validateDocument(doc, inventoryDocument());
  if (shape.length) return shape;
  return sortErrors(checkInventory(doc as LoadedDocument<Inventory>));
}

