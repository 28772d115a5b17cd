import type { JsonSchema } from './json-schema.js';
import { buildInventorySchema } from './inventory.js';
import { buildPlaybookSchema, type ActionSchemaSource } from './playbook.js';
import { allowTemplates } from './templated.js';

/**
 * A document schema (inventory, playbook) that is built only when needed. Building the playbook
 * schema (every action's input, relaxed for templates) costs tens of milliseconds at start-up; a
 * schema the build generated a validator for carries that validator's name, and the store
 * (validators.ts) serves the generated validator by name when the build stamp matches, without
 * building the schema. A schema without a name (a custom action list) is always built and compiled.
 */
export class DocumentSchema {
  private built?: JsonSchema;

  constructor(
    /** The name of the validator the build generates for this schema, if it generates one. */
    readonly name: string | undefined,
    private readonly build: () => JsonSchema,
  ) {}

  /** The schema, built on first use. */
  schema(): JsonSchema {
    this.built ??= this.build();
    return this.built;
  }

  /** Whether schema() has been built (tests check that a generated validator spares building it). */
  get isBuilt(): boolean {
    return this.built !== undefined;
  }
}

const playbooks = new WeakMap<ReadonlyArray<ActionSchemaSource>, { plain?: DocumentSchema; included?: DocumentSchema }>();

const shippedLists = new WeakSet<ReadonlyArray<ActionSchemaSource>>();

/**
 * Marks pgplay's own action list (actions/registry.ts marks it), the one the build generates validators
 * from. The registry is not imported here: loading an inventory must not load every action, and no
 * loader may depend on the actions (they are given to it).
 */
export function markShippedActions(list: ReadonlyArray<ActionSchemaSource>): void {
  shippedLists.add(list);
}

/**
 * The playbook schema for an action list (included: steps may omit hosts). `shipped` (default: the list
 * is the one markShippedActions marked): only then does the schema name a generated validator.
 */
export function playbookDocument(list: ReadonlyArray<ActionSchemaSource>, options: { hostsOptional?: boolean; shipped?: boolean } = {}): DocumentSchema {
  let cached = playbooks.get(list);
  if (!cached) playbooks.set(list, (cached = {}));
  const hostsOptional = options.hostsOptional ?? false;
  const name = hostsOptional ? 'playbook-included' : 'playbook';
  return (cached[hostsOptional ? 'included' : 'plain'] ??= new DocumentSchema((options.shipped ?? shippedLists.has(list)) ? name : undefined, () =>
    buildPlaybookSchema(list, { hostsOptional }),
  ));
}

const shells = new WeakMap<ReadonlyArray<ActionSchemaSource>, { plain?: DocumentSchema; included?: DocumentSchema }>();

/**
 * The playbook schema with every action's input accepted as it is: everything a playbook is but its
 * steps' action inputs, which stepInputDocument checks one action at a time. A valid playbook is
 * checked by the two without loading the full playbook validator (over a megabyte of generated code,
 * the largest single cost of a run's start-up); the full one explains an invalid playbook.
 */
export function playbookShellDocument(list: ReadonlyArray<ActionSchemaSource>, options: { hostsOptional?: boolean; shipped?: boolean } = {}): DocumentSchema {
  let cached = shells.get(list);
  if (!cached) shells.set(list, (cached = {}));
  const hostsOptional = options.hostsOptional ?? false;
  const name = hostsOptional ? 'playbook-included-shell' : 'playbook-shell';
  // Names only: the shell must not read an action (a shipped list imports its actions on demand).
  const names = list.map((a) => a.name);
  return (cached[hostsOptional ? 'included' : 'plain'] ??= new DocumentSchema((options.shipped ?? shippedLists.has(list)) ? name : undefined, () =>
    buildPlaybookSchema(names.map((n) => ({ name: n, summary: '', schema: {} })), { hostsOptional }),
  ));
}

/** The schema one action's input is checked against inside a playbook (templates allowed). */
export function stepInputSchema(action: ActionSchemaSource): JsonSchema {
  const own = action.schema;
  let relaxed = stepInputs.get(own);
  // One object per action schema: the validator store finds a generated validator once per object.
  if (!relaxed) stepInputs.set(own, (relaxed = allowTemplates(own)));
  return relaxed;
}

const stepInputs = new WeakMap<JsonSchema, JsonSchema>();

let inventory: DocumentSchema | undefined;

/** The inventory schema, which depends on nothing but its code. */
export function inventoryDocument(): DocumentSchema {
  inventory ??= new DocumentSchema('inventory', buildInventorySchema);
  return inventory;
}
