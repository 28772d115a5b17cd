import type { ActionSchemaSource } from '../schema/playbook.js';
import { playbookDocument } from '../schema/documents.js';
import { hasGeneratedValidator } from '../schema/validators.js';
import type { ReadOnlySource } from './check-mode.js';
import { stepsOf } from './semantic.js';
import type { LoadedDocument } from './yaml.js';

/**
 * The actions a loader checks playbooks against. A list may import its actions on demand (the shipped
 * one does: actions/registry.ts): then the loader has it import the actions a playbook names before
 * checking it, and every action only when it has to build the playbook schema itself.
 */
export type ActionList = ReadonlyArray<ActionSchemaSource & ReadOnlySource> & {
  /** Imports the named actions (names that are no action are ignored). */
  load?(names: Iterable<string>): Promise<unknown>;
  loadAll?(): Promise<unknown>;
};

/** Imports what checking `doc` against `actions` reads; nothing for a list of actions already imported. */
export async function importActionsFor(doc: LoadedDocument, actions: ActionList, options: { included?: boolean } = {}): Promise<void> {
  if (!actions.load || !actions.loadAll) return;
  const schema = playbookDocument(actions, { hostsOptional: options.included ?? false });
  if (!hasGeneratedValidator('document', schema)) {
    await actions.loadAll();
    return;
  }
  // The engine runs these same steps: it finds their actions imported (getAction).
  await actions.load(stepsOf(doc.data).flatMap(({ body }) => Object.keys(body)));
}
