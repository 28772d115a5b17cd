import { describe, expect, it } from 'vitest';
import { loadAllActions } from '../../src/actions/registry.js';
import { commandReadsOnly } from '../../src/actions/command-readers.js';
import sqlAction from '../../src/actions/sql.js';
import pgbackrestAction from '../../src/actions/pgbackrest.js';
import waitAction from '../../src/actions/wait.js';

const actions = await loadAllActions();

describe('which steps may run for real under plan (readOnly)', () => {
  it('command: readers as an argv only', () => {
    expect(commandReadsOnly({ argv: ['date', '+%s'] })).toBe(true);
    expect(commandReadsOnly({ argv: ['/usr/bin/grep', '-E', 'x', '{{host.pgdata}}/log/a.log'] })).toBe(true);
    expect(commandReadsOnly({ argv: ['/usr/lib/postgresql/15/bin/pg_controldata', '/var/lib/x'] })).toBe(true);
    expect(commandReadsOnly({ argv: ['date', '-s', '2020-01-01'] })).toBe(false);
    expect(commandReadsOnly({ argv: ['date', '{{params.fmt}}'] })).toBe(false);
    expect(commandReadsOnly({ argv: ['{{vars.prog}}', 'x'] })).toBe(false);
    expect(commandReadsOnly({ argv: ['/tmp/evil/grep', 'x'] })).toBe(false);
    expect(commandReadsOnly({ argv: ['grep', 'x', 'f'], env: { LD_PRELOAD: '/tmp/x.so' } })).toBe(false);
    expect(commandReadsOnly({ shell: 'date +%s' })).toBe(false);
    expect(commandReadsOnly({ argv: ['rm', '-rf', '/x'] })).toBe(false);
    expect(commandReadsOnly({ argv: ['touch', '/x'] })).toBe(false);
    // restore.yml's room guard: sizes and free space are read by argv readers, not by a shell script.
    expect(commandReadsOnly({ argv: ['du', '-sk', '--', '{{host.pgdata}}'] })).toBe(true);
    expect(commandReadsOnly({ argv: ['stat', '-f', '-c', '%a %S', '--', '/var/lib'] })).toBe(true);
    expect(commandReadsOnly({ argv: ['sh', '-c', 'du -sk "$1"', 'sh', '/x'] })).toBe(false);
  });

  it('sql: only what the conservative detector calls read-only', () => {
    expect(sqlAction.readOnly!({ query: 'SELECT 1' })).toBe(true);
    expect(sqlAction.readOnly!({ query: 'SELECT pg_switch_wal()' })).toBe(false);
    expect(sqlAction.readOnly!({ query: 'DELETE FROM t' })).toBe(false);
    expect(sqlAction.readOnly!({ query: 'SELECT 1', read_only: false })).toBe(false);
    expect(sqlAction.readOnly!({ query: 'SELECT pg_switch_wal()', read_only: true })).toBe(false);
  });

  it('pgbackrest: info and verify; not check (it switches WAL), backup or restore', () => {
    expect(pgbackrestAction.readOnly!({ command: 'info' } as never)).toBe(true);
    expect(pgbackrestAction.readOnly!({ command: 'verify' } as never)).toBe(true);
    for (const command of ['check', 'backup', 'restore', 'expire', 'stanza-create', 'stop', 'start']) {
      expect(pgbackrestAction.readOnly!({ command } as never)).toBe(false);
    }
  });

  it('wait: every probe but a sql one that is not read-only', () => {
    expect(waitAction.readOnly!({ port: 5432 })).toBe(true);
    expect(waitAction.readOnly!({ sql: 'SELECT true' })).toBe(true);
    expect(waitAction.readOnly!({ sql: 'SELECT pg_promote()' })).toBe(false);
  });

  it('dump: list and verify (they read the dumps); not a dump; wal_archive: info and visible, not check (it switches WAL)', () => {
    const dump = actions.find((a) => a.name === 'dump')!;
    expect(dump.readOnly!({ command: 'list' })).toBe(true);
    expect(dump.readOnly!({ command: 'verify' })).toBe(true);
    expect(dump.readOnly!({ command: 'dump' })).toBe(false);
    const walArchive = actions.find((a) => a.name === 'wal_archive')!;
    expect(walArchive.readOnly!({ command: 'info' })).toBe(true);
    expect(walArchive.readOnly!({ command: 'visible' })).toBe(true);
    expect(walArchive.readOnly!({ command: 'check' })).toBe(false);
  });

  it('barman: version, check, list-backups and show-backup; not what switches WAL, backs up, deletes, creates a slot or recovers', () => {
    const barman = actions.find((a) => a.name === 'barman')!;
    for (const command of ['version', 'check', 'list-backups', 'show-backup']) expect(barman.readOnly!({ command }), command).toBe(true);
    for (const command of ['switch-wal', 'backup', 'delete', 'cron', 'create-slot', 'recover']) expect(barman.readOnly!({ command }), command).toBe(false);
  });

  it('the actions that change state declare nothing (they never run under plan)', () => {
    const declared = actions.filter((a) => a.readOnly).map((a) => a.name).sort();
    expect(declared).toEqual(['assert', 'barman', 'command', 'dump', 'pgbackrest', 'preflight', 'sql', 'wait', 'wal_archive']);
  });

  it('preflight: its check and apply are the same reads (as a guard it runs before the pre-flight: engine/schedule.ts)', () => {
    const preflight = actions.find((a) => a.name === 'preflight')!;
    expect(preflight.readOnly!({ tools: ['pg_basebackup'] })).toBe(true);
  });
});

describe('wait under check mode', () => {
  it('does not run a probe query that is not read-only', async () => {
    const connected: string[] = [];
    const ctx = {
      checkMode: true,
      connectPostgres: async () => {
        connected.push('connect');
        throw new Error('must not connect');
      },
    } as never;
    const r = await waitAction.check(ctx, { sql: 'SELECT pg_switch_wal() IS NOT NULL' });
    expect(r).toMatchObject({ changed: false, msg: 'would wait (the query is not read-only: not run under plan)' });
    expect(connected).toEqual([]);
    // A read-only probe is still run (and here fails to connect, which a wait reports as "not yet").
    const ro = await waitAction.check(ctx, { sql: 'SELECT true' });
    expect(ro.msg).toMatch(/^not yet: must not connect/);
    expect(connected).toEqual(['connect']);
  });
});
