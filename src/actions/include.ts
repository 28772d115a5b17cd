import { PgplayError } from '../core/errors.js';
import type { Action } from './types.js';

export interface IncludeInput {
  playbook: string;
  params?: Record<string, unknown>;
}

/**
 * Runs another playbook's steps in place, with its own params. The engine expands it (the included
 * steps report under `<step-id>/<child-id>`); this module exists so the input schema is registered and
 * validated like every other action's.
 */
export const includeAction: Action<IncludeInput> = {
  name: 'include',
  summary: 'Runs the steps of another playbook (path relative to this one) with the given params.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['playbook'],
    properties: {
      playbook: { type: 'string', description: 'Path of the playbook to include, relative to this playbook.' },
      params: { type: 'object', description: 'Params for the included playbook.' },
    },
  },
  async check() {
    throw notDirect();
  },
  async apply() {
    throw notDirect();
  },
};

function notDirect(): PgplayError {
  return new PgplayError({ code: 'SEMANTIC', message: 'include is expanded by the engine and cannot run as a plain action' });
}

export default includeAction;
