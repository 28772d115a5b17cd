import type { ValidateFunction } from 'ajv';
import { playbookShellDocument, stepInputSchema } from '../schema/documents.js';
import { validatorFor, hasGeneratedValidator } from '../schema/validators.js';
import type { ActionList } from './action-catalog.js';
import { stepsOf } from './semantic.js';
import type { LoadedDocument } from './yaml.js';

/**
 * Whether the playbook is valid against the playbook schema, answered without its full validator: the
 * shell (everything but the actions' inputs) and then each step's action input against that action's
 * own part of the schema, both generated at build time. The playbook schema holds an action's input
 * only as its step's (or handler's) property, and document validation changes nothing it validates,
 * so the two together accept exactly what the full validator accepts. false means "not known valid":
 * the full validator then finds and explains the errors. Lists whose validators the build did not
 * generate always answer false.
 */
export function validByParts(doc: LoadedDocument, actions: ActionList, options: { included?: boolean } = {}): boolean {
  const shell = playbookShellDocument(actions, { hostsOptional: options.included ?? false });
  if (!hasGeneratedValidator('document', shell) || !validatorFor('document', shell)(doc.data)) return false;
  for (const { body } of stepsOf(doc.data)) {
    for (const action of actions) {
      if (!(action.name in body)) continue;
      const validate = stepInputValidator(action);
      if (!validate?.(body[action.name])) return false;
    }
  }
  return true;
}

function stepInputValidator(action: ActionList[number]): ValidateFunction | undefined {
  const schema = stepInputSchema(action);
  return hasGeneratedValidator('document', schema) ? validatorFor('document', schema) : undefined;
}
