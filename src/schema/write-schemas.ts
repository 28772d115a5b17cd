import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionSchemaSource } from './playbook.js';
import { publishedSchema, schemaFileName, type SchemaKind } from './publish.js';

const KINDS: SchemaKind[] = ['inventory', 'playbook'];

/**
 * Writes schemas/*.schema.json from the code. Regenerate with
 * `UPDATE_SCHEMAS=1 npx vitest run test/unit/schema-drift.test.ts` (no build needed), or with
 * `npm run schemas` (src/app/write-schemas.ts gives it the shipped actions).
 */
export function writePublishedSchemas(dir: string, list: ReadonlyArray<ActionSchemaSource>): string[] {
  return KINDS.map((kind) => {
    const file = join(dir, schemaFileName(kind));
    writeFileSync(file, publishedSchema(kind, list));
    return file;
  });
}
