import type { JsonSchema } from '../actions/types.js';
import type { ValidatorProfile } from './profiles.js';

/** Below this size (JSON text) a subschema is left in place: a function call would cost more than it saves. */
export const HOIST_MIN_CHARS = 1000;

/**
 * The schema the lean profile compiles: the same constraints, with every large subschema of a
 * `properties` map (the root's and each definition's) moved into `definitions` and referenced, one
 * definition per distinct text. The playbook schema holds each action's input twice (steps and
 * handlers): ajv would generate it twice, into two functions of a quarter megabyte each that V8 must
 * compile whole on first call. Subschemas that declare an `$id` stay put, since moving one would
 * change how references inside it resolve.
 */
export function leanSchema(schema: JsonSchema): JsonSchema {
  const out = structuredClone(schema);
  const definitions = ((out.definitions as Record<string, JsonSchema> | undefined) ?? {}) as Record<string, JsonSchema>;
  const hoisted = new Map<string, string>();
  const maps = [out, ...Object.values(definitions)].map((node) => node?.properties).filter(isSchemaMap);
  for (const properties of maps) {
    for (const [key, sub] of Object.entries(properties)) {
      if (!sub || typeof sub !== 'object') continue;
      const text = JSON.stringify(sub);
      if (text.length < HOIST_MIN_CHARS || text.includes('"$id"')) continue;
      let name = hoisted.get(text);
      if (!name) {
        let n = hoisted.size;
        while (`lean-${n}` in definitions) n++;
        name = `lean-${n}`;
        hoisted.set(text, name);
        definitions[name] = sub;
      }
      properties[key] = { $ref: `#/definitions/${name}` };
    }
  }
  if (hoisted.size) out.definitions = definitions;
  return out;
}

function isSchemaMap(value: unknown): value is Record<string, JsonSchema> {
  return !!value && typeof value === 'object' && !Array.isArray(value);
}

/** The schema as a profile compiles it (the lean profile's is reshaped, with the same meaning). */
export function compiledSchema(profile: ValidatorProfile, schema: JsonSchema): JsonSchema {
  return profile === 'document-lean' ? leanSchema(schema) : schema;
}
