/**
 * The recovery action on a PGDATA-shaped directory (no server needed), for every major 11..17: which
 * files land (mode 0600, owned by postgres), which leftovers go, the include_dir line, and what a
 * running server needs for each change (restart to enter recovery; primary_conninfo reloads from 13,
 * restore_command from 14).
 */
import { execa } from 'execa';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import recoveryAction, { type RecoveryActionInput } from '../../src/actions/recovery.js';
import type { Outcome } from '../../src/actions/types.js';
import { PgplayError } from '../../src/core/errors.js';
import type { Host } from '../../src/model/inventory.js';
import { localHost, tempDir, testContext } from './support/action-context.js';

const PASSFILE = '/var/lib/postgresql/.pgpass';
let tmp: { path: string; cleanup(): Promise<void> };
let pgdata: string;

beforeEach(async () => {
  tmp = await tempDir('recovery');
  pgdata = join(tmp.path, 'data');
});
afterEach(async () => {
  await tmp.cleanup();
});

async function makePgdata(version: number, conf = "# the user's own\nshared_buffers = '1GB'\n") {
  await execa('install', ['-d', '-o', 'postgres', '-m', '0700', pgdata]);
  for (const [name, text] of [
    ['PG_VERSION', `${version}\n`],
    ['postgresql.conf', conf],
  ] as const) {
    await writeFile(join(pgdata, name), text, { mode: 0o600 });
    await execa('chown', ['postgres', join(pgdata, name)]);
  }
}

function ctx(version: number, opts: { upstreamPort?: number; checkMode?: boolean; slots?: boolean } = {}) {
  const base = localHost().postgres;
  const host: Host = localHost({ name: 'db2', role: 'standby', upstream: 'db1', pgdata, postgres: { ...base, version } });
  const db1: Host = localHost({ name: 'db1', address: '10.0.0.11', postgres: { ...base, version, port: opts.upstreamPort ?? 5432 } });
  const c = testContext({ host, checkMode: opts.checkMode, diff: true });
  c.hosts = { db1, db2: host };
  c.inventory = { ...c.inventory, postgres: { version }, replication: { user: 'replicator', slots: opts.slots ?? true } };
  return c;
}

async function apply(version: number, input: RecoveryActionInput, opts: Parameters<typeof ctx>[1] = {}): Promise<Outcome> {
  const c = ctx(version, opts);
  const planned = await recoveryAction.check(c, input);
  if (c.checkMode || !planned.changed) return planned;
  const done = await recoveryAction.apply(c, input, planned);
  // What check predicted is what apply did.
  expect(done.data).toEqual(planned.data);
  return done;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
const ownerMode = async (p: string) => (await execa('stat', ['-c', '%U:%a', p])).stdout;
const conninfo = (port = 5432) => `host=10.0.0.11 port=${port} user=replicator application_name=db2 passfile=${PASSFILE}`;

describe('recovery action: a standby on every major', () => {
  for (const version of [11, 12, 13, 14, 15, 16, 17]) {
    it(`PostgreSQL ${version}: the right files, 0600, a restart to enter recovery, then nothing to do`, async () => {
      await makePgdata(version);
      const input: RecoveryActionInput = { passfile: PASSFILE };
      const plan = await apply(version, input, { checkMode: true });
      expect(plan.changed).toBe(true);
      expect(await exists(join(pgdata, version <= 11 ? 'recovery.conf' : 'standby.signal'))).toBe(false);

      const first = await apply(version, input);
      expect(first.changed).toBe(true);
      expect(first.data).toMatchObject({ version, apply_by: 'restart', needs_restart: true, needs_reload: false, primary_conninfo: conninfo() });
      if (version <= 11) {
        expect(first.msg).toBe('created recovery.conf; a running server needs a restart');
        const text = await readFile(join(pgdata, 'recovery.conf'), 'utf8');
        expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
          "standby_mode = 'on'",
          `primary_conninfo = '${conninfo()}'`,
          "primary_slot_name = 'pgplay_db2'",
          "recovery_target_timeline = 'latest'",
        ]);
        expect(await ownerMode(join(pgdata, 'recovery.conf'))).toBe('postgres:600');
        expect(await exists(join(pgdata, 'standby.signal'))).toBe(false);
        expect(await readFile(join(pgdata, 'postgresql.conf'), 'utf8')).not.toContain('include_dir');
      } else {
        expect(first.msg).toBe('created conf.d/pgplay-recovery.conf, created standby.signal, updated postgresql.conf; a running server needs a restart');
        const text = await readFile(join(pgdata, 'conf.d', 'pgplay-recovery.conf'), 'utf8');
        expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([`primary_conninfo = '${conninfo()}'`, "primary_slot_name = 'pgplay_db2'"]);
        expect(await ownerMode(join(pgdata, 'conf.d', 'pgplay-recovery.conf'))).toBe('postgres:600');
        expect(await ownerMode(join(pgdata, 'conf.d'))).toBe('postgres:700');
        expect(await ownerMode(join(pgdata, 'standby.signal'))).toBe('postgres:600');
        expect(await readFile(join(pgdata, 'standby.signal'), 'utf8')).toBe('');
        expect(await readFile(join(pgdata, 'postgresql.conf'), 'utf8')).toBe(
          "# the user's own\nshared_buffers = '1GB'\n\n# added by pgplay: its settings live in this directory\ninclude_dir = 'conf.d'\n",
        );
      }
      const second = await apply(version, input);
      expect(second).toMatchObject({ changed: false, data: { apply_by: 'none' } });
    });
  }
});

describe('recovery action: the debian layout', () => {
  it("writes the settings into the layout's conf.d beside /etc/postgresql/<v>/<cluster>/postgresql.conf, not into PGDATA", async () => {
    // A standby restored from a Debian primary's backup: PGDATA holds no postgresql.conf, the config
    // directory does (with Debian's include_dir = 'conf.d').
    const configDir = join(tmp.path, 'etc');
    await makePgdata(15);
    await execa('rm', [join(pgdata, 'postgresql.conf')]);
    await execa('install', ['-d', '-o', 'postgres', '-m', '0755', configDir]);
    const debianConf = "data_directory = '" + pgdata + "'\ninclude_dir = 'conf.d'\n";
    await writeFile(join(configDir, 'postgresql.conf'), debianConf);
    const c = ctx(15);
    c.host = { ...c.host, postgres: { ...c.host.postgres, layout: 'debian', cluster: 'main', configDir } };
    c.hosts = { ...c.hosts, db2: c.host };
    const input: RecoveryActionInput = { passfile: PASSFILE };
    const planned = await recoveryAction.check(c, input);
    const done = await recoveryAction.apply(c, input, planned);
    expect(done.changed).toBe(true);
    const text = await readFile(join(configDir, 'conf.d', 'pgplay-recovery.conf'), 'utf8');
    expect(text).toContain(`primary_conninfo = '${conninfo()}'`);
    expect(await exists(join(pgdata, 'standby.signal'))).toBe(true);
    expect(await exists(join(pgdata, 'conf.d'))).toBe(false);
    expect(await exists(join(pgdata, 'postgresql.conf'))).toBe(false);
    // Debian's own include already reads conf.d: nothing appended.
    expect(await readFile(join(configDir, 'postgresql.conf'), 'utf8')).toBe(debianConf);
    expect((await recoveryAction.check(c, input)).changed).toBe(false);
  });
});

describe('recovery action: what a change needs on a running server', () => {
  it('a new upstream address takes a restart on 12 and a reload from 13', async () => {
    for (const [version, expected] of [
      [12, 'restart'],
      [13, 'reload'],
      [17, 'reload'],
    ] as const) {
      await makePgdata(version);
      await apply(version, { passfile: PASSFILE });
      const moved = await apply(version, { passfile: PASSFILE }, { upstreamPort: 5544 });
      expect(moved.data).toMatchObject({ apply_by: expected, primary_conninfo: conninfo(5544) });
      expect(moved.msg).toBe(`updated conf.d/pgplay-recovery.conf; a running server needs a ${expected}`);
      expect(moved.diff).toContain(`-primary_conninfo = '${conninfo()}'\n+primary_conninfo = '${conninfo(5544)}'\n`);
      await tmp.cleanup();
      tmp = await tempDir('recovery');
      pgdata = join(tmp.path, 'data');
    }
  });

  it('a new restore_command takes a restart on 13 and a reload from 14; 11 always restarts', async () => {
    for (const [version, expected] of [
      [11, 'restart'],
      [13, 'restart'],
      [14, 'reload'],
    ] as const) {
      await makePgdata(version);
      await apply(version, { passfile: PASSFILE, restore_command: 'cp /archive/%f "%p"' });
      const r = await apply(version, { passfile: PASSFILE, restore_command: 'pgbackrest --stanza=main archive-get %f "%p"' });
      expect(r.data).toMatchObject({ apply_by: expected });
      expect(r.data?.settings).toMatchObject({ restore_command: 'pgbackrest --stanza=main archive-get %f "%p"' });
      await tmp.cleanup();
      tmp = await tempDir('recovery');
      pgdata = join(tmp.path, 'data');
    }
  });

  it('switching a 15 standby to a targeted recovery swaps the signal files and keeps the previous settings file', async () => {
    await makePgdata(15);
    await apply(15, { passfile: PASSFILE });
    const r = await apply(15, {
      mode: 'recovery',
      restore_command: 'pgbackrest --stanza=main archive-get %f "%p"',
      target: { type: 'name', value: 'before_drop', action: 'promote' },
    });
    expect(r.msg).toBe('created recovery.signal, updated conf.d/pgplay-recovery.conf, removed standby.signal; a running server needs a restart');
    expect(await exists(join(pgdata, 'standby.signal'))).toBe(false);
    expect(await ownerMode(join(pgdata, 'recovery.signal'))).toBe('postgres:600');
    const text = await readFile(join(pgdata, 'conf.d', 'pgplay-recovery.conf'), 'utf8');
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      `restore_command = 'pgbackrest --stanza=main archive-get %f "%p"'`,
      "recovery_target_name = 'before_drop'",
      "recovery_target_action = 'promote'",
    ]);
    expect(await readFile(join(pgdata, 'conf.d', 'pgplay-recovery.conf.pgplay-prev'), 'utf8')).toContain('primary_conninfo');
    expect(r.diff).toContain('remove: standby.signal\n');
  });

  it('says when postgresql.auto.conf overrides a setting it writes', async () => {
    await makePgdata(15);
    await writeFile(join(pgdata, 'postgresql.auto.conf'), "restore_command = 'pgbackrest --stanza=main archive-get %f \"%p\"'\n");
    const r = await apply(15, { passfile: PASSFILE, restore_command: 'cp /archive/%f "%p"' });
    expect(r.data).toMatchObject({ overridden_by_auto_conf: ['restore_command'] });
    expect(r.msg).toMatch(/; note: postgresql\.auto\.conf also sets restore_command and overrides this file$/);
  });

  it('slot: false and no inventory slots leave primary_slot_name out', async () => {
    await makePgdata(16);
    const r = await apply(16, { passfile: PASSFILE, slot: false });
    expect(Object.keys(r.data?.settings as object)).toEqual(['primary_conninfo']);
    const s = await apply(16, { passfile: PASSFILE }, { slots: false });
    expect(s.changed).toBe(false);
  });
});

describe('recovery action: refusals', () => {
  it('refuses a PGDATA of another major than the inventory says (exit 3)', async () => {
    await makePgdata(14);
    const err = await apply(15, { passfile: PASSFILE }).catch((e) => e);
    expect(err).toBeInstanceOf(PgplayError);
    expect(err).toMatchObject({ code: 'GUARD', message: `${pgdata} on db2 holds a PostgreSQL 14 cluster, but the inventory says 15` });
    expect(err.exitCode).toBe(3);
    expect(await exists(join(pgdata, 'standby.signal'))).toBe(false);
  });

  it('refuses promote_trigger_file on 16, where it no longer exists', async () => {
    await makePgdata(16);
    const err = await apply(16, { passfile: PASSFILE, settings: { promote_trigger_file: '/tmp/promote' } }).catch((e) => e);
    expect(err).toMatchObject({ code: 'SEMANTIC', message: 'promote_trigger_file does not exist in PostgreSQL 16' });
  });

  it('refuses a settings file beside postgresql.conf (include_dir would include postgresql.conf itself)', async () => {
    await makePgdata(15);
    const err = await apply(15, { passfile: PASSFILE, settings_path: `${pgdata}/pgplay-recovery.conf` }).catch((e) => e);
    expect(err).toMatchObject({ code: 'SEMANTIC' });
    expect(err.message).toMatch(/must be in a directory of its own/);
  });
});
