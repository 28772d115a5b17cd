/**
 * `pgplay plan` of every shipped procedure: a DBA rehearses the procedure with plan before 3 a.m., so no
 * shipped playbook (nor any playbook it includes) may be refused when loaded for plan / --check. Loaded
 * for plan, a step with check_mode: false must be one its action declares read-only (load/check-mode.ts).
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { PgplayErrors } from '../../src/core/errors.js';
import { shippedActions } from '../../src/actions/registry.js';
import { loadPlaybook } from '../../src/load/playbook.js';

const PLAYBOOKS = resolve(import.meta.dirname, '..', '..', 'playbooks');
const shipped = readdirSync(PLAYBOOKS).filter((f) => f.endsWith('.yml'));
const included = readdirSync(join(PLAYBOOKS, 'include'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => join('include', f));

async function planErrors(file: string, isInclude: boolean): Promise<string[]> {
  try {
    await loadPlaybook(join(PLAYBOOKS, file), { actions: shippedActions, check: true, included: isInclude });
    return [];
  } catch (e) {
    if (e instanceof PgplayErrors) return e.errors.map((x) => x.format());
    throw e;
  }
}

describe('every shipped playbook loads for plan', () => {
  test.each(shipped)('%s', async (file) => {
    expect(await planErrors(file, false)).toEqual([]);
  });
});

describe('every shipped include loads for plan', () => {
  test.each(included)('%s', async (file) => {
    expect(await planErrors(file, true)).toEqual([]);
  });
});
