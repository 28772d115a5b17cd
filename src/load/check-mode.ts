/**
 * Check mode is absolute: under plan / --check nothing changes. `check_mode: false` asks for a step to
 * run for real even then, which only an action that declares the input read-only may do (a query
 * whose rows later steps need, `pgbackrest info`, an assert, a wait, a reader such as `date`). Any other
 * such step is refused when the playbook is loaded, before anything runs.
 */
import { PgplayError } from '../core/errors.js';
import { stepsOf } from './semantic.js';
import type { LoadedDocument } from './yaml.js';

export interface ReadOnlySource {
  name: string;
  readOnly?(input: any): boolean;
}

export function checkModeErrors(doc: LoadedDocument, actions: ReadonlyArray<ReadOnlySource>): PgplayError[] {
  const errors: PgplayError[] = [];
  for (const { where, label, body } of stepsOf(doc.data)) {
    if (body.check_mode !== false) continue;
    const action = actions.find((a) => a.name in body);
    if (!action) continue;
    if (action.readOnly?.(body[action.name]) === true) continue;
    errors.push(
      new PgplayError({
        code: 'SEMANTIC',
        message: `${label} has check_mode: false, which would run its ${action.name} action for real under plan/--check, and that ${action.name} step is not read-only`,
        expected: 'check_mode: false only on read-only steps: sql with a read-only query, pgbackrest info or verify, assert, wait, or a command that runs a reader (date +FORMAT, grep, cat, stat, ...) as an argv',
        hint: 'plan changes nothing: run the playbook with `pgplay run` to make this change, or remove check_mode: false',
        position: doc.position([...where, 'check_mode']),
      }),
    );
  }
  return errors;
}
