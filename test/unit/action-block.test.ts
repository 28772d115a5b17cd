/**
 * The block action on the real local transport: pgplay's lines between marker lines, the user's lines
 * kept byte for byte around them, placed before the first rule the first time (first match wins in
 * pg_hba.conf), idempotent, owner and mode kept, a diff of the block only, and an old whole-file
 * pg_hba.conf of pgplay's converted.
 */
import { execa } from 'execa';
import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import blockAction, { type BlockInput } from '../../src/actions/block.js';
import type { Outcome } from '../../src/actions/types.js';
import { placeBlock } from '../../src/text/managed-block.js';
import { tempDir, testContext } from './support/action-context.js';

let tmp: { path: string; cleanup(): Promise<void> };
beforeEach(async () => {
  tmp = await tempDir('block');
});
afterEach(async () => {
  await tmp.cleanup();
});

async function run(input: BlockInput, opts: { checkMode?: boolean } = {}): Promise<{ check: Outcome; result: Outcome }> {
  const c = testContext({ checkMode: opts.checkMode, diff: true });
  const check = await blockAction.check(c, input);
  const result = c.checkMode || !check.changed ? check : await blockAction.apply(c, input, check);
  return { check, result };
}

const statOf = async (p: string) => (await execa('stat', ['-c', '%U:%G:%a', p])).stdout;

/** Debian's pg_hba.conf as pg_createcluster writes it (shortened), plus a rule of the user's. */
const DEBIAN_HBA = [
  '# PostgreSQL Client Authentication Configuration',
  '# ==============================================',
  '',
  '# Database administrative login by Unix domain socket',
  '# DO NOT DISABLE!',
  'local   all             postgres                                peer',
  '',
  '# TYPE  DATABASE        USER            ADDRESS                 METHOD',
  'local   all             all                                     peer',
  'host    app             app             10.9.0.0/16             scram-sha-256',
  '',
].join('\n');

const RULES = 'host    replication  replicator  10.0.0.12/32  scram-sha-256\n';

describe('block action', () => {
  it('inserts the block before the first rule and its note, keeps every other line, owner and mode; a second run changes nothing', async () => {
    const path = join(tmp.path, 'pg_hba.conf');
    await writeFile(path, DEBIAN_HBA);
    await chown(path, 0, 0);
    await chmod(path, 0o640);
    const input: BlockInput = { path, content: RULES };

    const plan = await run(input, { checkMode: true });
    expect(plan.check).toMatchObject({ changed: true, msg: `would insert the block into ${path}` });
    expect(await readFile(path, 'utf8')).toBe(DEBIAN_HBA);
    // The diff is the block and three lines around it, nothing else of the file.
    expect(plan.check.diff).toBe(
      [
        `--- ${path} (current)`,
        `+++ ${path} (with the block)`,
        '@@ -1,6 +1,10 @@',
        ' # PostgreSQL Client Authentication Configuration',
        ' # ==============================================',
        ' ',
        '+# BEGIN pgplay managed block',
        '+host    replication  replicator  10.0.0.12/32  scram-sha-256',
        '+# END pgplay managed block',
        '+',
        ' # Database administrative login by Unix domain socket',
        ' # DO NOT DISABLE!',
        ' local   all             postgres                                peer',
        '',
      ].join('\n'),
    );

    const first = await run(input);
    expect(first.result).toMatchObject({ changed: true, msg: `inserted the block into ${path}` });
    const after = await readFile(path, 'utf8');
    expect(after).toBe(
      DEBIAN_HBA.replace('# Database administrative', `# BEGIN pgplay managed block\n${RULES}# END pgplay managed block\n\n# Database administrative`),
    );
    expect(await statOf(path)).toBe('root:root:640');
    expect(await readFile(`${path}.pgplay-prev`, 'utf8')).toBe(DEBIAN_HBA);

    const second = await run(input);
    expect(second.result).toMatchObject({ changed: false, msg: `the block in ${path} is up to date` });
    expect(await readFile(path, 'utf8')).toBe(after);
  });

  it('rewrites only the block when its content changes, wherever the user moved it', async () => {
    const path = join(tmp.path, 'pg_hba.conf');
    const user = 'local all all peer\n';
    await writeFile(path, `${user}# BEGIN pgplay managed block\n${RULES}# END pgplay managed block\nhost all all 0.0.0.0/0 reject\n`);
    const changed = RULES + 'host    replication  replicator  10.0.0.13/32  scram-sha-256\n';
    const r = await run({ path, content: changed });
    expect(r.result).toMatchObject({ changed: true, msg: `updated the block in ${path}` });
    expect(await readFile(path, 'utf8')).toBe(`${user}# BEGIN pgplay managed block\n${changed}# END pgplay managed block\nhost all all 0.0.0.0/0 reject\n`);
    expect(r.check.diff).toContain('+host    replication  replicator  10.0.0.13/32  scram-sha-256\n');
    expect(r.check.diff!.split('\n').filter((l) => /^[-+][^-+]/.test(l))).toEqual(['+host    replication  replicator  10.0.0.13/32  scram-sha-256']);
  });

  it('refuses a file with a broken pair of markers, changing nothing', async () => {
    const path = join(tmp.path, 'pg_hba.conf');
    const text = `# BEGIN pgplay managed block\n${RULES}local all all peer\n`;
    await writeFile(path, text);
    await expect(run({ path, content: RULES })).rejects.toThrow(/1 "# BEGIN pgplay managed block" and 0 "# END pgplay managed block"/);
    expect(await readFile(path, 'utf8')).toBe(text);
  });

  it('a missing file is an error unless create: true, which makes it with the mode asked', async () => {
    const path = join(tmp.path, 'new.conf');
    await expect(run({ path, content: RULES })).rejects.toThrow(/does not exist/);
    const r = await run({ path, content: RULES, create: true, mode: '0600' });
    expect(r.result).toMatchObject({ changed: true, msg: `created ${path}` });
    expect(await readFile(path, 'utf8')).toBe(`# BEGIN pgplay managed block\n${RULES}# END pgplay managed block\n`);
    expect((await statOf(path)).endsWith(':600')).toBe(true);
  });

  it('converts a pg_hba.conf an older pgplay wrote whole: its header and the rules now in the block go, the rest stays below', () => {
    const legacy = [
      '# Managed by pgplay for db1: changes here are overwritten. Add rules in the inventory\'s postgres.hba.',
      '# TYPE  DATABASE     USER            ADDRESS                 METHOD',
      '',
      'local   all          all                                     peer',
      '',
      '# BEGIN pgplay replication: standbys (and former primaries) streaming from this host',
      'host    replication  replicator  10.0.0.12/32  scram-sha-256',
      '# END pgplay replication',
      '',
      'host    all          all             127.0.0.1/32            scram-sha-256',
      '',
    ].join('\n');
    const out = placeBlock(legacy, RULES, { marker: 'pgplay managed block', position: 'first-entry', legacyFirstLine: /^# Managed by pgplay/ });
    expect(out.action).toBe('converted');
    expect(out.text).toBe(
      [
        '# BEGIN pgplay managed block',
        'host    replication  replicator  10.0.0.12/32  scram-sha-256',
        '# END pgplay managed block',
        '',
        '# TYPE  DATABASE     USER            ADDRESS                 METHOD',
        '',
        'local   all          all                                     peer',
        '',
        'host    all          all             127.0.0.1/32            scram-sha-256',
        '',
      ].join('\n'),
    );
    // Converted once: from then on it is an ordinary file with the block.
    expect(placeBlock(out.text, RULES, { marker: 'pgplay managed block', position: 'first-entry', legacyFirstLine: /^# Managed by pgplay/ }).action).toBe('unchanged');
  });

  it('a file with no rule at all gets the block at the bottom', () => {
    expect(placeBlock('# only comments\n', RULES, { marker: 'm', position: 'first-entry' }).text).toBe(`# only comments\n\n# BEGIN m\n${RULES}# END m\n`);
  });
});
