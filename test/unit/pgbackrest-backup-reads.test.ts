import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgbackrestAction } from '../../src/actions/pgbackrest.js';
import type { PgbackrestInput } from '../../src/actions/pgbackrest/input.js';
import { FakeTransport, type FakeExecHandler } from '../../src/transports/fake.js';
import { localHost, testContext } from './support/action-context.js';

/*
 * What the nightly backup's pgBackRest steps run beside the commands a cron script would (issue 14): a
 * backup reads `pgbackrest info` only after it (to describe the new set), not before it too, and verify
 * reads info (where the oldest backup's WAL starts) while verify runs, not before it.
 */
const fixtures = join(import.meta.dirname, '../fixtures/pgbackrest');
const info = readFileSync(join(fixtures, 'info3.json'), 'utf8');
const missing = readFileSync(join(fixtures, 'info-missing.json'), 'utf8').replace('"nope"', '"demo"');
const verifyOut = readFileSync(join(fixtures, 'verify-ok.out'), 'utf8');
const LABEL = '20261121-133900F';

function fakeRepository(o: { stanza: boolean } = { stanza: true }) {
  const ran: string[] = [];
  let verifying: (() => void) | undefined;
  const handler: FakeExecHandler = async (argv) => {
    const command = argv.at(-1)!;
    if (!argv.some((a) => a.endsWith('pgbackrest'))) return { exitCode: 0 };
    ran.push(`pgbackrest ${command} begins`);
    if (command === 'info') {
      // verify is still running when info comes: let it end now.
      verifying?.();
      ran.push('pgbackrest info ends');
      return { stdout: o.stanza ? info : missing };
    }
    if (command === 'backup') {
      ran.push('pgbackrest backup ends');
      if (!o.stanza) return { exitCode: 55, stderr: "ERROR: [055]: unable to load info file '/repo/backup/demo/backup.info'\n" };
      return { stderr: `INFO: backup command begin 2.45\nINFO: new backup label = ${LABEL}\nINFO: backup command end: completed successfully\n` };
    }
    if (command === 'verify') {
      // Ends when info has run, or at once when nothing reads info alongside it.
      await new Promise<void>((resolve) => {
        verifying = resolve;
        setTimeout(resolve, 200);
      });
      verifying = undefined;
      ran.push('pgbackrest verify ends');
      return { stdout: verifyOut };
    }
    ran.push(`pgbackrest ${command} ends`);
    return { exitCode: 0 };
  };
  return { ran, transport: new FakeTransport('bk1', handler) };
}

function context(transport: FakeTransport) {
  const host = localHost({ name: 'bk1', role: 'repository', pgdata: undefined });
  return { ...testContext({ host, transport }), checkReads: new Map<string, unknown>() };
}

async function step(ctx: ReturnType<typeof context>, input: PgbackrestInput) {
  const planned = await pgbackrestAction.check(ctx, input);
  return planned.changed ? pgbackrestAction.apply(ctx, input, planned) : planned;
}

describe('the nightly backup\'s pgBackRest reads', () => {
  it('a full backup reads info once, after the backup, to describe the new set', async () => {
    const { ran, transport } = fakeRepository();
    const outcome = await step(context(transport), { command: 'backup', stanza: 'demo', type: 'full' });
    expect(outcome).toMatchObject({ changed: true, data: { label: LABEL, type: 'full' } });
    expect(ran.filter((r) => r.endsWith('begins'))).toEqual(['pgbackrest backup begins', 'pgbackrest info begins']);
  });

  it('a backup into a stanza that does not exist still fails naming the stanza (info read after the failure)', async () => {
    const { ran, transport } = fakeRepository({ stanza: false });
    await expect(step(context(transport), { command: 'backup', stanza: 'demo', type: 'full' })).rejects.toMatchObject({
      code: 'STEP_FAILED',
      message: 'stanza demo does not exist in the repository (missing stanza path)',
      hint: 'run the pgbackrest action with command: stanza-create first',
    });
    expect(ran.filter((r) => r.endsWith('begins'))).toEqual(['pgbackrest backup begins', 'pgbackrest info begins']);
  });

  it('under plan the backup step still says what info tells (no prior full backup, no stanza yet)', async () => {
    const { ran, transport } = fakeRepository({ stanza: false });
    const ctx = { ...context(transport), checkMode: true };
    expect(await pgbackrestAction.check(ctx, { command: 'backup', stanza: 'demo', type: 'incr' })).toEqual({
      changed: true,
      msg: 'would take a full backup (stanza demo is not created yet: missing stanza path)',
    });
    expect(ran).toEqual(['pgbackrest info begins', 'pgbackrest info ends']);
  });

  it('verify reads info while it runs, not before it', async () => {
    const { ran, transport } = fakeRepository();
    const outcome = await step(context(transport), { command: 'verify', stanza: 'demo' });
    expect(outcome).toMatchObject({ changed: false, data: { status: 'ok', backups_checked: 3 } });
    // Both began before either ended.
    expect(ran.slice(0, 2).sort()).toEqual(['pgbackrest info begins', 'pgbackrest verify begins']);
    expect(ran).toHaveLength(4);
  });
});
