import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import baseRestoreAction from '../../src/actions/base-restore.js';
import pendingRestartAction from '../../src/actions/pending-restart.js';
import pgpassAction from '../../src/actions/pgpass.js';
import { ShellExportRecorder } from '../../src/engine/shell-export.js';
import type { Step } from '../../src/model/playbook.js';
import preflightAction from '../../src/actions/preflight.js';
import { actionNames, getAction, loadAllActions } from '../../src/actions/registry.js';
import { Redactor } from '../../src/core/redact.js';
import type { ActionContext } from '../../src/engine/action.js';
import { actionContext, host } from './support/engine-harness.js';

/*
 * The break-glass export (issue 16 item 5) must cover the standby build: every action that
 * standby-from-backup.yml runs, through its includes, can say what it would do as shell. The read-only
 * ones (preflight, pending_restart) give their checks as comments; base_restore gives the commands that
 * restore a base backup, run here by sh on real files.
 */

const PLAYBOOKS = resolve(__dirname, '../../playbooks');

// getAction answers for imported actions only.
await loadAllActions();

/** Action names of a playbook's steps (and rescue steps), following includes as the engine resolves them. */
function actionsOf(file: string, seen = new Set<string>()): Set<string> {
  const found = new Set<string>();
  if (seen.has(file)) return found;
  seen.add(file);
  const doc = parse(readFileSync(file, 'utf8')) as { steps?: Record<string, unknown>[]; handlers?: Record<string, unknown>[] };
  const names = new Set(actionNames());
  const walk = (steps: Record<string, unknown>[] | undefined) => {
    for (const step of steps ?? []) {
      for (const key of Object.keys(step)) if (names.has(key)) found.add(key);
      const include = step.include as { playbook?: string } | undefined;
      if (include?.playbook) for (const a of actionsOf(resolve(dirname(file), include.playbook), seen)) found.add(a);
      walk(step.rescue as Record<string, unknown>[] | undefined);
    }
  };
  walk(doc.steps);
  walk(doc.handlers);
  return found;
}

function context(h = host('db2')): ActionContext {
  return actionContext({
    host: h,
    inventory: { cluster: 'main', postgres: { version: 17 }, hosts: {}, backup: { tool: 'basebackup', repoPath: '/repo' } } as never,
    factsOf: async () => ({ reachable: true, version: 17 }) as never,
  });
}

describe('break-glass export covers the standby build', () => {
  it('every action of standby-from-backup.yml and its includes can export', () => {
    const used = [...actionsOf(join(PLAYBOOKS, 'standby-from-backup.yml'))].sort();
    // The walk is real: it reaches the includes' actions.
    expect(used).toEqual(expect.arrayContaining(['assert', 'sql', 'postgres', 'pgbackrest', 'base_restore', 'recovery', 'wait', 'template', 'command']));
    expect(used).toContain('barman');
    // Every one, Barman's recover included (shell-export-barman.test.ts): none is refused by --export-shell.
    expect(used.filter((name) => !getAction(name)?.exportShell)).toEqual([]);
  });

  it('preflight and pending_restart export their checks as comments, never commands', async () => {
    const ctx = context();
    const pre = await preflightAction.exportShell!(ctx, { tools: ['pg_basebackup', 'pgbackrest'] }, { changed: false, msg: 'pg_basebackup 17.2' });
    expect(pre.commands ?? []).toEqual([]);
    expect(pre.comments!.join('\n')).toMatch(/check: \/usr\/lib\/postgresql\/15\/bin\/pg_basebackup --version is PostgreSQL 17 or newer/);
    expect(pre.comments!.join('\n')).toMatch(/check: pgbackrest version supports PostgreSQL 17/);
    const pending = await pendingRestartAction.exportShell!(
      ctx,
      { template: 'postgresql.conf.hbs', dest: '/etc/postgresql/17/main/conf.d/pgplay.conf' },
      { changed: false, data: { settings: ['archive_mode'], reason: 'archive_mode changed' } },
    );
    expect(pending.commands ?? []).toEqual([]);
    expect(pending.comments!.join('\n')).toContain('a restart of db2 will be needed: archive_mode changed');
  });
});

describe('break-glass export: the secret check looks for secret values, not for shapes', () => {
  it('the pgpass step of a standby build is exported (its key line looks like a .pgpass line but holds no secret); a value is still refused', async () => {
    const redactor = new Redactor();
    const password = 'repl-0123456789abcdef';
    redactor.add(password);
    const h = host('db2');
    const ctx: ActionContext = {
      ...context(h),
      hosts: { db1: { ...host('db1', 'primary'), address: '127.0.57.1' }, db2: h },
      inventory: { cluster: 'main', postgres: { version: 15 }, hosts: {}, replication: { user: 'replicator', password: { env: 'PGPLAY_REPLICATION_PASSWORD' } } } as never,
      redactor,
      secret: async () => password,
    };
    const step = (id: string) => ({ id, name: id, hosts: 'db2' }) as Step;
    const r = new ShellExportRecorder(redactor);
    await r.planned(step('build/pgpass'), 'db2', pgpassAction, ctx, { path: '/var/lib/postgresql/.pgpass', entries: [{ host: 'db1', database: 'replication' }] }, { changed: true });
    const script = r.render({ playbook: 'p.yml', file: '/x.sh' });
    expect(script).toContain('k=127.0.57.1:5432:replication:replicator:');
    expect(script).toContain('"${PGPLAY_REPLICATION_PASSWORD}"');
    expect(script).not.toContain(password);

    const leaking = new ShellExportRecorder(redactor);
    const echo = { ...pgpassAction, exportShell: async () => ({ commands: [`echo ${password}`] }) };
    await leaking.planned(step('leak'), 'db2', echo, ctx, {}, { changed: true });
    expect(() => leaking.render({ playbook: 'p.yml', file: '/x.sh' })).toThrow(/step leak on db2: its commands would hold a secret value/);
  });
});

describe('break-glass export: base_restore', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-base-restore-export-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('unpacks the set the plan chose over the old contents, pg_control first, and leaves a startable layout', async () => {
    const set = join(dir, 'repo', 'base-20260101T000000Z');
    const src = join(dir, 'src');
    const pgdata = join(dir, 'pgdata');
    await mkdir(join(src, 'global'), { recursive: true });
    await mkdir(set, { recursive: true });
    await mkdir(join(pgdata, 'global'), { recursive: true });
    await writeFile(join(src, 'PG_VERSION'), '17\n');
    await writeFile(join(src, 'global', 'pg_control'), 'new control');
    await writeFile(join(src, 'backup_label'), 'START WAL LOCATION: 0/2000028\n');
    await execa('tar', ['-c', '-z', '-f', join(set, 'base.tar.gz'), '-C', src, '.']);
    await writeFile(join(pgdata, 'old-file'), 'old');
    await writeFile(join(pgdata, 'global', 'pg_control'), 'old control');
    await execa('chown', ['-R', 'postgres:', dir]);
    await execa('chmod', ['0755', dir]);

    const h = { ...host('db2'), pgdata };
    const exported = await baseRestoreAction.exportShell!(context(h), {}, { changed: true, data: { set: 'base-20260101T000000Z', dir: set, pgdata } });
    const script = exported.commands!.join('\n');
    expect(script).toContain('base-20260101T000000Z');
    const r = await execa('sh', ['-ec', script], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(pgdata, 'old-file'))).toBe(false);
    expect(await readFile(join(pgdata, 'global', 'pg_control'), 'utf8')).toBe('new control');
    expect(await readFile(join(pgdata, 'PG_VERSION'), 'utf8')).toBe('17\n');
    expect((await execa('stat', ['-c', '%U %a', join(pgdata, 'pg_wal')])).stdout).toBe('postgres 700');
  });
});
