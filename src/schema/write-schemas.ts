import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ActionSchemaSource } from './playbook.js';
import { publishedSchema, schemaFileName, type SchemaKind } from './publish.js';
import { publishedReportSchema, REPORT_SCHEMA_FILE } from './report.js';

const KINDS: SchemaKind[] = ['inventory', 'playbook'];

/**
 * Writes schemas/*.schema.json from the code. Regenerate with
 * `UPDATE_SCHEMAS=1 npx vitest run test/unit/schema-drift.test.ts` (no build needed), or with
 * `npm run schemas` (src/app/write-schemas.ts gives it the shipped actions).
 */
export function writePublishedSchemas(dir: string, list: ReadonlyArray<ActionSchemaSource>): string[] {
  const files = KINDS.map((kind) => {
    const file = join(dir, schemaFileName(kind));
    writeFileSync(file, publishedSchema(kind, list));
    return file;
  });
  // The run report's schema: what --report writes, not an input pgplay validates.
  const report = join(dir, REPORT_SCHEMA_FILE);
  writeFileSync(report, publishedReportSchema());
  return [...files, report];
}
