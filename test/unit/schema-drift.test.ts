import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadAllActions } from '../../src/actions/registry.js';
import { SCHEMAS_DIR } from '../../src/core/paths.js';
import { parseYaml } from '../../src/load/yaml.js';
import { publishedSchema, schemaFileName, schemaFor, type SchemaKind } from '../../src/schema/publish.js';
import { validateDocument } from '../../src/schema/validate.js';
import { writePublishedSchemas } from '../../src/schema/write-schemas.js';

const actions = await loadAllActions();

const REGENERATE = 'UPDATE_SCHEMAS=1 npx vitest run test/unit/schema-drift.test.ts';

if (process.env.UPDATE_SCHEMAS) writePublishedSchemas(SCHEMAS_DIR, actions);

function published(kind: SchemaKind): string {
  try {
    return readFileSync(join(SCHEMAS_DIR, schemaFileName(kind)), 'utf8');
  } catch {
    return '';
  }
}

describe.each(['inventory', 'playbook'] as const)('schemas/%s.schema.json', (kind) => {
  test('is exactly what the code validates with', () => {
    const text = published(kind);
    expect(text, `schemas/${schemaFileName(kind)} is out of date; regenerate it with: ${REGENERATE}`).toBe(publishedSchema(kind, actions));
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(schemaFor(kind, actions))));
  });

  test('names itself for editors: draft-07, $id and title', () => {
    const schema = JSON.parse(published(kind)) as Record<string, unknown>;
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.$id).toBe(`https://pgplay.dev/schemas/${kind}.schema.json`);
    expect(schema.title).toBe(`pgplay ${kind}`);
    expect(published(kind).endsWith('}\n')).toBe(true);
  });
});

test('the published inventory schema, read back from disk, accepts the DESIGN.md example', () => {
  const schema = JSON.parse(published('inventory')) as Record<string, unknown>;
  const file = join(import.meta.dirname, '..', 'fixtures', 'valid', 'inventory.yml');
  expect(validateDocument(parseYaml(readFileSync(file, 'utf8'), file), schema)).toEqual([]);
});
