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

describe("restore.yml's recover/ready", () => {
  /*
   * The readiness of a restored server is a wait on pg_is_in_recovery() (the run's connection, the first
   * probe 20 ms after the start, watching the server so that a FATAL end fails it at once), as the drill's
   * ready is, not a shell loop that starts psql and pg_ctl status every 0.2 s. The proof is judged only
   * after a real run saw the server promoted: the wait registers detail then, never under plan.
   */
  test('is a wait for pg_is_in_recovery() = false; target-reached runs only when that wait saw the promotion', async () => {
    const { playbook: include } = await loadPlaybook(join(PLAYBOOKS, 'include', 'recover-and-prove.yml'), { actions: shippedActions, check: true, included: true });
    const ready = include.steps.find((s) => s.id === 'ready') as unknown as { wait?: { in_recovery: boolean }; command?: unknown; register: string };
    expect(ready.command).toBeUndefined();
    expect(ready.wait).toMatchObject({ in_recovery: false });
    expect(ready.register).toBe('recovery_ready');
    const { playbook } = await loadPlaybook(join(PLAYBOOKS, 'restore.yml'), { actions: shippedActions, check: true });
    const when = (playbook.steps.find((s) => s.id === 'target-reached') as unknown as { when: string }).when;
    const proof = { stdout: 'LOG:  recovery stopping before commit' };
    // A real run: the wait saw the server promoted (what the wait registers when it is met).
    expect(evaluateCondition(when, { recovery_proof: proof, recovery_ready: { changed: false, msg: 'pg_is_in_recovery() = false', detail: 'pg_is_in_recovery() = false' } })).toBe(true);
    // Under plan: nothing was started; the wait only said what it would wait for.
    expect(evaluateCondition(when, { recovery_proof: proof, recovery_ready: { changed: false, msg: 'holds: pg_is_in_recovery() = false' } })).toBe(false);
    expect(evaluateCondition(when, { recovery_proof: { skipped: true }, recovery_ready: { skipped: true } })).toBe(false);
  });
});
