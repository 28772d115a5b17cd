/**
 * The pgbackrest action's input rules, argv building and error mapping, without running pgBackRest
 * (the e2e suite does that). Error reports come from captured real stderr.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pgbackrestAction } from '../../src/actions/pgbackrest.js';
import { pgbackrestFailure } from '../../src/actions/pgbackrest/errors.js';
import { optionArgs, recoveryOptionArgs, resolveInput, validateInput, type PgbackrestInput } from '../../src/actions/pgbackrest/input.js';
import { restoreArgs, withArchivingOff } from '../../src/actions/pgbackrest/restore.js';
import { PgbackrestRunner } from '../../src/actions/pgbackrest/runner.js';
import { PgplayError } from '../../src/core/errors.js';
import { validateRenderedInput } from '../../src/engine/input.js';
import { playbookErrors } from '../../src/load/playbook.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { Inventory } from '../../src/model/inventory.js';
import { parseErrorReport, parseLog } from '../../src/postgres/pgbackrest-info.js';
import { localHost, testContext } from './support/action-context.js';

const host15 = localHost({ name: 'db2', role: 'standby', pgdata: '/pg/data' });
const host11 = localHost({ name: 'old', role: 'standby', postgres: { ...localHost().postgres, version: 11 } });

function semantic(input: Partial<PgbackrestInput>, host = host15): PgplayError {
  try {
    validateInput({ command: 'restore', ...input } as PgbackrestInput, host);
  } catch (e) {
    if (e instanceof PgplayError) return e;
    throw e;
  }
  throw new Error('expected a SEMANTIC error');
}

describe('input rules', () => {
  it('names a key used with a command it does not belong to', () => {
    expect(semantic({ command: 'backup', target: 'x' })).toMatchObject({
      code: 'SEMANTIC',
      message: 'target does not apply to pgbackrest backup',
      expected: 'target only with command restore',
    });
    expect(semantic({ command: 'info', delta: true }).expected).toBe('delta only with command restore or backup');
    expect(semantic({ command: 'check', all: true }).message).toBe('all does not apply to pgbackrest check');
    expect(() => validateInput({ command: 'backup', allow_primary: false }, host15)).not.toThrow();
  });

  it('checks types and targets per restore type', () => {
    expect(semantic({ command: 'backup', type: 'name' })).toMatchObject({ message: 'backup type "name" is not a backup type', expected: 'full, diff, incr' });
    expect(semantic({ type: 'time' })).toMatchObject({ message: 'restore type time needs a target', expected: 'target: the time to recover to' });
    expect(semantic({ type: 'name' }).expected).toBe('target: the restore point name to recover to');
    expect(semantic({ type: 'standby', target: 'x' }).message).toBe('target does not apply to restore type standby');
    expect(semantic({ type: 'standby', target_action: 'promote' }).message).toBe('target_action does not apply to restore type standby');
    expect(semantic({ type: 'name', target: 'rp', target_exclusive: true }).message).toBe('target_exclusive does not apply to restore type name');
    expect(semantic({ target_timeline: 'newest' }).message).toBe('target_timeline "newest" is not a timeline');
    for (const ok of [
      { type: 'immediate', target_action: 'promote' },
      { type: 'xid', target: '1234', target_exclusive: true, target_timeline: 'latest' },
      { type: 'time', target: '2026-01-01 10:00:00+00', target_timeline: 3 },
      { type: 'standby' },
    ] as const) {
      expect(() => validateInput({ command: 'restore', ...ok } as PgbackrestInput, host15)).not.toThrow();
    }
  });

  it('follows the PostgreSQL major: standby_mode only up to 11', () => {
    expect(semantic({ recovery_options: { standby_mode: 'on' } })).toMatchObject({
      message: 'recovery option standby_mode does not exist on PostgreSQL 15: the server refuses to start with it',
      expected: 'type: standby (pgBackRest then writes standby.signal)',
    });
    expect(() => validateInput({ command: 'restore', recovery_options: { standby_mode: true } }, host11)).not.toThrow();
  });

  it("archive_mode: off keeps a restored copy from archiving on every major: pgBackRest's --archive-mode from 12, pgplay's postgresql.auto.conf line on 11", () => {
    for (const archive_mode of ['off', 'preserve'] as const) expect(() => validateInput({ command: 'restore', archive_mode }, host11)).not.toThrow();
    // pgBackRest 2.45 has no --archive-mode for 11 (it refuses the option there).
    expect(restoreArgs({ command: 'restore', archive_mode: 'off', delta: true }, '/pg/data', 11)).toEqual(['--pg1-path=/pg/data', '--delta']);
    expect(restoreArgs({ command: 'restore', archive_mode: 'off', delta: true }, '/pg/data', 12)).toEqual(['--pg1-path=/pg/data', '--delta', '--archive-mode=off']);
    // The line comes last, so it wins over an archive_mode the primary set with ALTER SYSTEM.
    const restored = "# Do not edit this file manually!\narchive_mode = 'on'\n";
    const off = withArchivingOff(restored);
    expect(off.startsWith(restored)).toBe(true);
    expect(off.trimEnd().split('\n').at(-1)).toBe("archive_mode = 'off'");
    expect(withArchivingOff('')).toMatch(/^[^\n]*\narchive_mode = 'off'\n$/);
    expect(withArchivingOff("archive_mode = 'on'").split('\n').filter((l) => l.startsWith('archive_mode'))).toEqual(["archive_mode = 'on'", "archive_mode = 'off'"]);
  });

  it('keeps recovery targets to the typed keys and passwords off the command line', () => {
    expect(semantic({ recovery_options: { recovery_target_name: 'x' } }).message).toBe('recovery option recovery_target_name is set by type and target');
    const pw = semantic({ recovery_options: { primary_conninfo: "host=db1 user=r password='s3cret'" } });
    expect(pw.message).toBe('recovery option primary_conninfo contains a password');
    expect(pw.message).not.toContain('s3cret');
    expect(pw.hint).toContain('.pgpass');
    expect(semantic({ recovery_options: { 'Bad-Key': 1 } }).message).toBe('recovery option "Bad-Key" is not a setting name');
  });

  it('refuses extra options that are secrets, typed keys or pgplay\'s own', () => {
    expect(semantic({ command: 'backup', options: { 'repo1-cipher-pass': 'x' } })).toMatchObject({
      message: 'pgbackrest option repo1-cipher-pass is a secret and never goes on the command line',
      expected: 'backup.cipherPass in the inventory ({env: NAME} or {file: PATH})',
    });
    expect(semantic({ command: 'backup', options: { type: 'full' } })).toMatchObject({ message: 'pgbackrest option type has its own key', expected: 'type: ...' });
    expect(semantic({ command: 'backup', options: { 'process-max': 4 } }).expected).toBe('process_max: ...');
    expect(semantic({ command: 'verify', options: { 'log-level-stderr': 'off' } }).message).toBe(
      "pgbackrest option log-level-stderr is set by pgplay, which reads pgBackRest's output",
    );
    expect(semantic({ command: 'backup', options: { '--type': 'full' } }).message).toBe('pgbackrest option "--type" is not an option name');
  });
});

describe('stanza and config resolution', () => {
  const inv = (extra: Partial<Inventory> = {}): Inventory => ({ cluster: 'main', postgres: { version: 15 }, hosts: {}, ...extra });

  it('stanza: the input, else backup.stanza, else the cluster name', () => {
    expect(resolveInput({ command: 'info', stanza: 'x' }, host15, inv({ backup: { tool: 'pgbackrest', stanza: 'y' } })).stanza).toBe('x');
    expect(resolveInput({ command: 'info' }, host15, inv({ backup: { tool: 'pgbackrest', stanza: 'y' } })).stanza).toBe('y');
    expect(resolveInput({ command: 'info' }, host15, inv()).stanza).toBe('main');
  });

  it('config: the input, else host var pgbackrest_config, else inventory var, else none', () => {
    const h = { ...host15, vars: { pgbackrest_config: '/h.conf' } };
    const i = inv({ vars: { pgbackrest_config: '/i.conf' } });
    expect(resolveInput({ command: 'info', config: '/x.conf' }, h, i).config).toBe('/x.conf');
    expect(resolveInput({ command: 'info' }, h, i).config).toBe('/h.conf');
    expect(resolveInput({ command: 'info' }, host15, i).config).toBe('/i.conf');
    expect(resolveInput({ command: 'info' }, host15, inv())).toEqual({ stanza: 'main' });
    expect(() => resolveInput({ command: 'info' }, { ...host15, vars: { pgbackrest_config: 'rel.conf' } }, inv())).toThrow(
      'the pgbackrest_config variable must be an absolute path, got "rel.conf"',
    );
  });
});

describe('argv', () => {
  it('puts config, stanza and log levels first and the command last', () => {
    const runner = new PgbackrestRunner(testContext({ host: host15 }), 'main', '/etc/pgb.conf');
    expect(runner.argv('backup', ['--type=full'])).toEqual([
      'pgbackrest',
      '--config=/etc/pgb.conf',
      '--stanza=main',
      '--log-level-console=off',
      '--log-level-stderr=info',
      '--type=full',
      'backup',
    ]);
    expect(runner.argv('stop', [], { noStanza: true, logLevel: 'warn' })).toEqual(['pgbackrest', '--config=/etc/pgb.conf', '--log-level-console=off', '--log-level-stderr=warn', 'stop']);
  });

  it('extra options: true --key, false --no-key, lists repeat', () => {
    expect(optionArgs({ 'archive-timeout': 30, 'archive-check': false, 'compress': true, 'exclude': ['a', 'b'] })).toEqual([
      '--archive-timeout=30',
      '--no-archive-check',
      '--compress',
      '--exclude=a',
      '--exclude=b',
    ]);
    expect(recoveryOptionArgs({ hot_standby: true, primary_conninfo: 'host=db1 user=r', recovery_min_apply_delay: '5min' })).toEqual([
      '--recovery-option=hot_standby=on',
      '--recovery-option=primary_conninfo=host=db1 user=r',
      '--recovery-option=recovery_min_apply_delay=5min',
    ]);
  });

  it('restore always names the host PGDATA, each value one argument', () => {
    expect(
      restoreArgs(
        {
          command: 'restore',
          type: 'time',
          target: '2026-11-21 13:40:00+00',
          target_action: 'promote',
          target_exclusive: false,
          target_timeline: 'latest',
          set: '20261121-133900F',
          delta: true,
          archive_mode: 'off',
          process_max: 2,
          recovery_options: { primary_conninfo: 'host=db1 port=5432' },
          options: { 'link-all': true },
        },
        '/pg/data',
      ),
    ).toEqual([
      '--pg1-path=/pg/data',
      '--type=time',
      '--target=2026-11-21 13:40:00+00',
      '--target-action=promote',
      // false is pgBackRest's default, and 2.45 refuses --no-target-exclusive (error 31: cannot be negated).
      '--target-timeline=latest',
      '--set=20261121-133900F',
      '--delta',
      '--archive-mode=off',
      '--process-max=2',
      '--recovery-option=primary_conninfo=host=db1 port=5432',
      '--link-all',
    ]);
    expect(restoreArgs({ command: 'restore', type: 'default' }, '/pg/data')).toEqual(['--pg1-path=/pg/data']);
  });
});

describe('error mapping from real stderr', () => {
  const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../fixtures/pgbackrest', name), 'utf8');
  const ctx = { command: 'backup', stanza: 'demo', config: '/etc/pgb.conf' };

  it('62: stop file, with the pgbackrest start hint', () => {
    const e = pgbackrestFailure(62, parseErrorReport(parseLog(fixture('backup-62.err'))), '', ctx);
    expect(e.code).toBe('STEP_FAILED');
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe('pgbackrest backup failed with error 62 (pgBackRest is stopped (a stop file exists)): stop file exists for stanza demo');
    expect(e.hint).toBe('run `pgbackrest start` (the pgbackrest action with command: start) once it is safe to let pgBackRest run again');
  });

  it('40: not empty, hint delta, then pgBackRest\'s own hint', () => {
    const e = pgbackrestFailure(40, parseErrorReport(parseLog(fixture('restore-40.err'))), '', { ...ctx, command: 'restore' });
    expect(e.message).toBe("pgbackrest restore failed with error 40 (the restore target is not empty): unable to restore to path '/tmp/pgbr-exp/r2' because it contains files");
    expect(e.hint).toBe('use delta: true to restore over an existing PGDATA (only files that differ are copied); try using --delta if this is what you intended.');
  });

  it('38, 82, 45 and 50', () => {
    expect(pgbackrestFailure(38, parseErrorReport(parseLog(fixture('restore-38.err'))), '', ctx).message).toContain('(PostgreSQL is running in the target PGDATA)');
    const timeout = pgbackrestFailure(82, parseErrorReport(parseLog(fixture('check-82.err'))), '', { ...ctx, command: 'check' });
    expect(timeout.message).toBe(
      'pgbackrest check failed with error 82 (WAL did not reach the repository before the archive timeout): WAL segment 000000010000000000000012 was not archived before the 2000ms timeout',
    );
    expect(timeout.hint!.startsWith('check archive_command (it must run pgbackrest --config=/etc/pgb.conf --stanza=demo archive-push %p)')).toBe(true);
    const split = pgbackrestFailure(45, { code: 45, message: "WAL file '000000010000000000000003' already exists in the repo1 archive with a different checksum", hints: [] }, '', ctx);
    expect(split.message).toContain('two clusters archive into the same stanza (split brain)');
    expect(split.hint).toContain('fence the old primary');
    expect(pgbackrestFailure(50, undefined, 'ERROR: [050]: unable to acquire lock', ctx).message).toBe(
      'pgbackrest backup failed with error 50 (another pgBackRest process holds the lock for stanza demo): ERROR: [050]: unable to acquire lock',
    );
  });

  it('an unknown code keeps pgBackRest\'s text and no invented hint', () => {
    const e = pgbackrestFailure(99, { code: 99, message: 'something odd', hints: [] }, '', ctx);
    expect(e.message).toBe('pgbackrest backup failed with error 99: something odd');
    expect(e.hint).toBeUndefined();
  });
});

describe('schema', () => {
  it('is destructive only for restore', () => {
    expect(pgbackrestAction.destructive!({ command: 'restore' })).toBe(true);
    expect(pgbackrestAction.destructive!({ command: 'backup' })).toBe(false);
  });

  it('validates rendered input: backup and restore types, unknown keys', () => {
    expect(validateRenderedInput(pgbackrestAction, { command: 'backup', type: 'full', process_max: '4' })).toEqual({ command: 'backup', type: 'full', process_max: 4 });
    expect(() => validateRenderedInput(pgbackrestAction, { command: 'backup', type: 'time' })).toThrow(/type: must be one of full, diff, incr/);
    expect(() => validateRenderedInput(pgbackrestAction, { command: 'restore', type: 'latest' })).toThrow(/type: must be one of default, immediate, lsn/);
    expect(() => validateRenderedInput(pgbackrestAction, { command: 'info', stanzza: 'x' })).toThrow(/unknown key "stanzza"/);
  });

  it('a playbook with a wrong backup type fails validation at the value\'s position', () => {
    const file = '/tmp/pgbackrest-schema-test.yml';
    const text = ['name: t', 'steps:', '  - id: b', '    hosts: all', '    pgbackrest: { command: backup, type: time }', ''].join('\n');
    const errors = playbookErrors(parseYaml(text, file), { actions: [pgbackrestAction] }, []);
    expect(errors.length).toBeGreaterThan(0);
    const shown = errors.map((e) => e.format().replace(file, basename(file)));
    expect(shown.some((s) => s.startsWith('pgbackrest-schema-test.yml:5:') && /full, diff, incr/.test(s))).toBe(true);
    const ok = ['name: t', 'steps:', '  - id: b', '    hosts: all', '    pgbackrest: { command: backup, type: "{{params.type}}" }', ''].join('\n');
    expect(playbookErrors(parseYaml(ok, file), { actions: [pgbackrestAction] }, [])).toEqual([]);
  });
});

describe('a missing pgbackrest.conf', () => {
  const host = { ...host15, vars: { pgbackrest_config: '/nonexistent/pgplay/pgbackrest.conf' } };

  it('under --check is a note (an earlier step may render it), not a failure', async () => {
    const ctx = testContext({ host, checkMode: true });
    expect(await pgbackrestAction.check(ctx, { command: 'backup', type: 'full' })).toEqual({
      changed: true,
      msg: 'would run pgbackrest backup (/nonexistent/pgplay/pgbackrest.conf does not exist yet)',
    });
    expect(await pgbackrestAction.check(ctx, { command: 'info' })).toEqual({
      changed: false,
      skipped: true,
      msg: 'pgbackrest info not run: /nonexistent/pgplay/pgbackrest.conf does not exist yet',
    });
  });

  it('for real is pgBackRest error 55 with a hint naming the file', async () => {
    const ctx = testContext({ host });
    const e = await pgbackrestAction.check(ctx, { command: 'info' }).then(
      () => undefined,
      (err: unknown) => err as PgplayError,
    );
    expect(e).toBeInstanceOf(PgplayError);
    expect(e!.message).toBe(
      "pgbackrest info failed with error 55 (a file pgBackRest needs is missing): unable to open missing file '/nonexistent/pgplay/pgbackrest.conf' for read",
    );
    expect(e!.hint).toBe('does /nonexistent/pgplay/pgbackrest.conf exist and is it readable by the PostgreSQL OS user?');
  });
});
