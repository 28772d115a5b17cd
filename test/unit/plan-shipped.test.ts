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
import { evaluateCondition } from '../../src/expr/index.js';

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

describe("restore.yml's room guard", () => {
  test('compares what du -sk prints with the free blocks times the block size stat -f prints, in KiB', async () => {
    const { playbook } = await loadPlaybook(join(PLAYBOOKS, 'restore.yml'), { actions: shippedActions, check: true });
    const that = (playbook.steps.find((s) => s.id === 'room-enough') as unknown as { assert: { that: string } }).assert.that;
    const room = (used: number, freeBlocks: number, blockSize: number) =>
      evaluateCondition(that, { restore_room: { stdout: `${used}\t/var/lib/postgresql/15/main` }, restore_free: { stdout: `${freeBlocks} ${blockSize}` } });
    expect(room(400, 100, 4096)).toBe(true);
    expect(room(401, 100, 4096)).toBe(false);
    expect(room(1, 0, 4096)).toBe(false);
  });
});
