/** A JSON Schema document (draft-07), as the schemas and every action's input schema are written. */
export type JsonSchema = Record<string, unknown>;
