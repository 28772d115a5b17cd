import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { actions } from '../actions/registry.js';
import { SCHEMAS_DIR } from '../core/paths.js';
import type { ActionSchemaSource } from './playbook.js';
import { publishedSchema, schemaFileName, type SchemaKind } from './publish.js';

const KINDS: SchemaKind[] = ['inventory', 'playbook'];

/**
 * Writes schemas/*.schema.json from the code. Regenerate with
 * `UPDATE_SCHEMAS=1 npx vitest run test/unit/schema-drift.test.ts` (no build needed), or after a
 * build with `node dist/schema/write-schemas.js`.
 */
export function writePublishedSchemas(dir: string = SCHEMAS_DIR, list: ReadonlyArray<ActionSchemaSource> = actions): string[] {
  return KINDS.map((kind) => {
    const file = join(dir, schemaFileName(kind));
    writeFileSync(file, publishedSchema(kind, list));
    return file;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const file of writePublishedSchemas()) process.stdout.write(`wrote ${file}\n`);
}
