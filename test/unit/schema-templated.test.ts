import { describe, expect, test } from 'vitest';
import { allowTemplates, TEMPLATE_SCHEMA } from '../../src/schema/templated.js';
import { buildInventorySchema } from '../../src/schema/inventory.js';
import { buildPlaybookSchema } from '../../src/schema/playbook.js';
import { createAjv } from '../../src/schema/validate.js';
import { fakeActions } from '../fixtures/fake-actions.js';

describe('allowTemplates', () => {
  const schema = allowTemplates({
    type: 'object',
    properties: {
      count: { type: 'integer', minimum: 1 },
      type: { enum: ['full', 'diff'] },
      mode: { type: 'string', pattern: '^[0-7]{4}$' },
      free: { type: 'string' },
      flags: { type: 'array', items: { type: 'boolean' } },
      nested: { type: 'object', properties: { on: { type: 'boolean' } }, additionalProperties: false },
      either: { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^x' }] },
    },
    additionalProperties: false,
  });
  const validate = createAjv({ strict: true }).compile(schema);

  test('a template may stand wherever a non-string value, enum or pattern is expected', () => {
    expect(
      validate({
        count: '{{ params.n }}',
        type: '{{params.type}}',
        mode: '{{vars.mode}}',
        flags: ['{{x}}', true],
        nested: { on: '{{y}}' },
        either: '{{z}}',
      }),
    ).toBe(true);
  });

  test('without "{{" the original constraints still apply, and real values still pass', () => {
    expect(validate({ count: 3, type: 'full', mode: '0600', free: 'anything', flags: [false], nested: { on: true }, either: 'xy' })).toBe(true);
    for (const bad of [{ count: 'three' }, { type: 'weekly' }, { mode: 'rw' }, { flags: ['yes'] }, { nested: { on: 'no' } }, { either: 'y' }]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  test('containers are never replaced by a template, and free strings are left alone', () => {
    expect(validate({ nested: '{{x}}' })).toBe(false);
    expect(validate({ flags: '{{x}}' })).toBe(false);
    expect(schema.properties).toMatchObject({ free: { type: 'string' } });
    expect((schema.properties as Record<string, unknown>).count).toEqual({ anyOf: [{ type: 'integer', minimum: 1 }, TEMPLATE_SCHEMA] });
  });

  test('the input schema object is not modified', () => {
    const input = { type: 'object', properties: { n: { type: 'integer' } } };
    allowTemplates(input);
    expect(input).toEqual({ type: 'object', properties: { n: { type: 'integer' } } });
  });
});

describe("pgplay's own schemas", () => {
  test('compile under ajv strict mode (no typos, no unknown keywords)', () => {
    expect(() => createAjv({ strict: true }).compile(buildInventorySchema())).not.toThrow();
    expect(() => createAjv({ strict: true }).compile(buildPlaybookSchema(fakeActions))).not.toThrow();
    expect(() => createAjv({ strict: true }).compile(buildPlaybookSchema([]))).not.toThrow();
  });

  test('each action becomes a step property described by its summary', () => {
    const schema = buildPlaybookSchema(fakeActions) as { definitions: { step: { properties: Record<string, { description?: string }> } } };
    const props = schema.definitions.step.properties;
    expect(props.pgbackrest!.description).toBe('Runs pgBackRest');
    expect(Object.keys(props).slice(0, 3)).toEqual(['id', 'name', 'hosts']);
  });
});
