import type { JsonSchema } from '../actions/types.js';
import { PgplayErrors, type PgplayError } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { Playbook } from '../model/playbook.js';
import { buildPlaybookSchema, type ActionSchemaSource } from '../schema/playbook.js';
import { validateDocument } from '../schema/validate.js';
import { checkActionKeys, checkPlaybook } from './semantic.js';
import { loadYamlFile, sortErrors, type LoadedDocument } from './yaml.js';

export interface PlaybookLoadOptions {
  actions: ReadonlyArray<ActionSchemaSource>;
  /** When known, step and handler `hosts` are checked against it. */
  inventory?: Inventory;
  templateDirs?: string[];
  /** Loaded through an include: steps may omit `hosts` and inherit the include step's. */
  included?: boolean;
}

export interface LoadedPlaybook {
  playbook: Playbook;
  doc: LoadedDocument<Playbook>;
}

// Building and compiling the schema is the slow part; the action list rarely changes within a process.
const schemas = new WeakMap<ReadonlyArray<ActionSchemaSource>, { count: number; schema: JsonSchema; included: JsonSchema }>();

function schemaFor(actions: ReadonlyArray<ActionSchemaSource>, included: boolean): JsonSchema {
  let cached = schemas.get(actions);
  if (!cached || cached.count !== actions.length) {
    cached = {
      count: actions.length,
      schema: buildPlaybookSchema(actions),
      included: buildPlaybookSchema(actions, { hostsOptional: true }),
    };
    schemas.set(actions, cached);
  }
  return included ? cached.included : cached.schema;
}

/** Shape errors (schema and the one-action rule), or, once the shape is right, meaning errors. */
export function playbookErrors(doc: LoadedDocument, options: PlaybookLoadOptions): PgplayError[] {
  const names = options.actions.map((a) => a.name);
  const shape = [...validateDocument(doc, schemaFor(options.actions, options.included ?? false)), ...checkActionKeys(doc, names)];
  if (shape.length) return sortErrors(shape);
  return sortErrors(checkPlaybook(doc as LoadedDocument<Playbook>, options));
}

/** Reads, validates and checks a playbook; throws PgplayErrors holding every problem found. */
export async function loadPlaybook(file: string, options: PlaybookLoadOptions): Promise<LoadedPlaybook> {
  const doc = await loadYamlFile<Playbook>(file);
  const errors = playbookErrors(doc, options);
  if (errors.length) throw new PgplayErrors(errors);
  return { playbook: doc.data, doc };
}
