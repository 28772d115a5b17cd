/**
 * The pgpass action on the real local transport: a 0600 file owned by the cluster's OS user, lines
 * merged (the user's own kept byte for byte), inventory hosts and the replication secret as defaults,
 * and no password in any message or diff, old or new.
 */
import { execa } from 'execa';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pgpassAction, { type PgpassInput } from '../../src/actions/pgpass.js';
import type { Outcome } from '../../src/actions/types.js';
import { PgplayError } from '../../src/core/errors.js';
import { createSecretResolver } from '../../src/engine/secrets.js';
import { localHost, tempDir, testContext } from './support/action-context.js';

const PASSWORD = 'hunter2:with\\odd';
let tmp: { path: string; cleanup(): Promise<void> };
let env: Record<string, string>;

beforeEach(async () => {
  tmp = await tempDir('pgpass');
  env = { REPL_PW: PASSWORD, OTHER_PW: 'other-secret-9' };
});
afterEach(async () => {
  await tmp.cleanup();
});

function ctx(opts: { checkMode?: boolean } = {}) {
  const host = localHost({ name: 'db2', role: 'standby', upstream: 'db1' });
  const db1 = localHost({ name: 'db1', address: '10.0.0.11', postgres: { ...host.postgres, port: 5433 } });
  const c = testContext({ host, checkMode: opts.checkMode, diff: true });
  c.hosts = { db1, db2: host };
  c.inventory = { ...c.inventory, replication: { user: 'replicator', password: { env: 'REPL_PW' } } };
  c.secret = createSecretResolver(c.redactor, env);
  return c;
}

async function both(input: PgpassInput, opts: { checkMode?: boolean } = {}): Promise<{ check: Outcome; result: Outcome; texts: string }> {
  const c = ctx(opts);
  const check = await pgpassAction.check(c, input);
  const result = c.checkMode || !check.changed ? check : await pgpassAction.apply(c, input, check);
  const texts = JSON.stringify([check, result, c.logs]);
  return { check, result, texts };
}

const owner = async (p: string) => (await execa('stat', ['-c', '%U:%a', p])).stdout;

describe('pgpass action', () => {
  it('creates the file 0600 for postgres from inventory defaults, and shows no password', async () => {
    const path = join(tmp.path, 'pgpass');
    const input: PgpassInput = { path, entries: [{ host: 'db1', database: 'replication' }] };
    const plan = await both(input, { checkMode: true });
    expect(plan.check).toMatchObject({ changed: true, msg: `would create ${path}` });
    await expect(stat(path)).rejects.toThrow();

    const first = await both(input);
    expect(first.result).toMatchObject({ changed: true, msg: `created ${path}`, data: { path, entries: ['replicator@10.0.0.11:5433/replication'] } });
    expect(await readFile(path, 'utf8')).toBe('10.0.0.11:5433:replication:replicator:hunter2\\:with\\\\odd\n');
    expect(await owner(path)).toBe('postgres:600');
    expect(first.check.diff).toBe(
      `mode: 0600\nowner: postgres\n--- ${path} (current)\n+++ ${path} (new)\n@@ -0,0 +1 @@\n+10.0.0.11:5433:replication:replicator:********\n`,
    );
    expect(first.texts).not.toContain('hunter2');

    const second = await both(input);
    expect(second.result).toMatchObject({ changed: false, msg: `${path} is up to date` });
  });

  it('keeps the user\'s own lines, replaces its own in place, and hides old and new passwords', async () => {
    const path = join(tmp.path, 'pgpass');
    const mine = '# my notes\n*:*:*:app:app-secret-1\n10.0.0.11:5433:replication:replicator:old-secret-7\nbackup.host:5432:*:barman:b-secret\n';
    await writeFile(path, mine, { mode: 0o600 });
    await execa('chown', ['postgres', path]);
    const r = await both({ path, entries: [{ host: 'db1', database: 'replication' }, { host: 'monitor.example', port: 6432, user: 'watch', password: { env: 'OTHER_PW' } }] });
    expect(r.result).toMatchObject({ changed: true, msg: `updated ${path}` });
    expect(await readFile(path, 'utf8')).toBe(
      '# my notes\n*:*:*:app:app-secret-1\n10.0.0.11:5433:replication:replicator:hunter2\\:with\\\\odd\nbackup.host:5432:*:barman:b-secret\nmonitor.example:6432:*:watch:other-secret-9\n',
    );
    for (const secret of ['hunter2', 'old-secret-7', 'other-secret-9', 'app-secret-1', 'b-secret']) expect(r.texts).not.toContain(secret);
    expect(r.check.diff).toContain('+monitor.example:6432:*:watch:********\n');

    // Only a password differs: still a change, and the diff says so without showing either value.
    env.REPL_PW = 'brand-new-pw';
    const changed = await both({ path, entries: [{ host: 'db1', database: 'replication' }] });
    expect(changed.result.changed).toBe(true);
    expect(changed.check.diff).toBe('password changed (not shown)\n');
    expect(changed.texts).not.toContain('brand-new-pw');
    expect(changed.texts).not.toContain('hunter2');
    expect(await readFile(path, 'utf8')).toContain('10.0.0.11:5433:replication:replicator:brand-new-pw\n');
    // No previous copy: it would keep the old password on disk.
    await expect(stat(`${path}.pgplay-prev`)).rejects.toThrow();
  });

  it('puts back mode 0600 and the owner when only they drifted', async () => {
    const path = join(tmp.path, 'pgpass');
    await both({ path, entries: [{ host: 'db1' }] });
    await chmod(path, 0o644);
    await execa('chown', ['root', path]);
    const r = await both({ path, entries: [{ host: 'db1' }] });
    expect(r.check.diff).toBe('mode: 0644 -> 0600\nowner: root -> postgres\n');
    expect(await owner(path)).toBe('postgres:600');
  });

  it('refuses an entry without a password for a user other than the replication user', async () => {
    const err = await both({ path: join(tmp.path, 'x'), entries: [{ host: 'db1', user: 'app' }] }).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err).toMatchObject({ code: 'SEMANTIC', message: 'pgpass.entries[0] (app) has no password', expected: 'password: {env: NAME} or {file: PATH}' });
  });

  it('defaults to .pgpass in the home of the cluster\'s OS user', async () => {
    const c = ctx({ checkMode: true });
    const r = await pgpassAction.check(c, { entries: [{ host: 'db1' }] });
    const home = (await execa('getent', ['passwd', 'postgres'])).stdout.split(':')[5];
    expect(r.data?.path).toBe(`${home}/.pgpass`);
  });
});
