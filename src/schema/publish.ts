import type { JsonSchema } from './json-schema.js';
import { buildInventorySchema } from './inventory.js';
import { buildPlaybookSchema, type ActionSchemaSource } from './playbook.js';

export type SchemaKind = 'playbook' | 'inventory';

/** The schema object the loaders validate with; the published file is exactly its JSON text. */
export function schemaFor(kind: SchemaKind, actions: ReadonlyArray<ActionSchemaSource>): JsonSchema {
  return kind === 'inventory' ? buildInventorySchema() : buildPlaybookSchema(actions);
}

/** The text of schemas/<kind>.schema.json: 2-space JSON with a trailing newline. */
export function publishedSchema(kind: SchemaKind, actions: ReadonlyArray<ActionSchemaSource>): string {
  return `${JSON.stringify(schemaFor(kind, actions), null, 2)}\n`;
}

export function schemaFileName(kind: SchemaKind): string {
  return `${kind}.schema.json`;
}
