import { describe, expect, it } from 'vitest';
import { recoveryChangeApplyBy, recoveryFiles, recoverySettings, type RecoveryInput, type RecoveryPlan } from '../../src/postgres/recovery.js';
import { buildConninfo } from '../../src/postgres/conninfo.js';
import { PgplayError } from '../../src/core/errors.js';
import { expectGoldenDir } from '../golden/golden.js';

const MAJORS = [11, 12, 13, 14, 15, 16, 17];
const conninfo = buildConninfo({
  host: '10.0.0.11',
  port: 5432,
  user: 'replicator',
  applicationName: 'db2',
  passfile: '/var/lib/postgresql/.pgpass',
});
const restore = 'pgbackrest --stanza=main archive-get %f "%p"';

const CASES: Record<string, Omit<RecoveryInput, 'version'>> = {
  standby: { mode: 'standby', primaryConninfo: conninfo, primarySlotName: 'pgplay_db2', restoreCommand: restore },
  'pitr-time': {
    mode: 'recovery',
    restoreCommand: restore,
    target: { type: 'time', value: '2024-05-01 12:00:00+00', action: 'promote' },
  },
  'pitr-name': {
    mode: 'recovery',
    restoreCommand: restore,
    target: { type: 'name', value: 'before_drop', action: 'promote' },
  },
};

/** A postgresql.conf reader for the lines pgplay writes: name = 'quoted' | bare. */
function parseConf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const m = /^([a-z_]+) = (?:'((?:[^'\\]|''|\\.)*)'|(\S+))$/.exec(line);
    if (!m) throw new Error(`unparseable line: ${line}`);
    const value = m[2] !== undefined ? m[2].replace(/''/g, "'").replace(/\\(.)/g, '$1') : m[3]!;
    if (out.has(m[1]!)) throw new Error(`${m[1]} set twice`);
    out.set(m[1]!, value);
  }
  return out;
}

function goldenFiles(plan: RecoveryPlan): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of plan.files) files[f.path] = f.content;
  files['plan.json'] =
    JSON.stringify(
      { layout: plan.layout, files: plan.files.map((f) => ({ path: f.path, mode: f.mode.toString(8) })), remove: plan.remove },
      null,
      2,
    ) + '\n';
  return files;
}

describe('recoveryFiles golden files, every major 11..17', () => {
  for (const major of MAJORS) {
    for (const [name, input] of Object.entries(CASES)) {
      it(`PostgreSQL ${major} ${name}`, async () => {
        const plan = await recoveryFiles({ version: major, ...input });
        await expectGoldenDir(`recovery/pg${major}-${name}`, goldenFiles(plan));
      });
    }
  }
});

describe('recoveryFiles rules per major', () => {
  it('11 writes only recovery.conf, with standby_mode on for a standby and timeline latest', async () => {
    const plan = await recoveryFiles({ version: 11, ...CASES.standby! });
    expect(plan.layout).toBe('recovery.conf');
    expect(plan.files.map((f) => f.path)).toEqual(['recovery.conf']);
    expect(plan.files[0]!.mode).toBe(0o600);
    const conf = parseConf(plan.files[0]!.content);
    expect(Object.fromEntries(conf)).toEqual({
      standby_mode: 'on',
      primary_conninfo: conninfo,
      primary_slot_name: 'pgplay_db2',
      restore_command: restore,
      recovery_target_timeline: 'latest',
    });
    // A leftover 12+ settings file would name settings 11 does not know in postgresql.conf.
    expect(plan.remove).toEqual(['conf.d/pgplay-recovery.conf']);
  });

  it('11 targeted recovery has no standby_mode', async () => {
    const plan = await recoveryFiles({ version: 11, ...CASES['pitr-name']! });
    const conf = parseConf(plan.files[0]!.content);
    expect(conf.has('standby_mode')).toBe(false);
    expect(conf.get('recovery_target_name')).toBe('before_drop');
    expect(conf.get('recovery_target_action')).toBe('promote');
  });

  for (const major of MAJORS.filter((m) => m >= 12)) {
    it(`${major} writes the settings file plus the right signal file, never standby_mode or a trigger file`, async () => {
      for (const [name, input] of Object.entries(CASES)) {
        const plan = await recoveryFiles({ version: major, ...input });
        expect(plan.layout).toBe('signal-files');
        const signal = input.mode === 'standby' ? 'standby.signal' : 'recovery.signal';
        expect(plan.files.map((f) => [f.path, f.mode])).toEqual([
          ['conf.d/pgplay-recovery.conf', 0o600],
          [signal, 0o600],
        ]);
        expect(plan.files[1]!.content).toBe('');
        expect(plan.remove).toEqual([input.mode === 'standby' ? 'recovery.signal' : 'standby.signal', 'recovery.conf']);
        const conf = parseConf(plan.files[0]!.content);
        expect(conf.has('standby_mode'), name).toBe(false);
        expect(conf.has('promote_trigger_file'), name).toBe(false);
        expect(conf.has('trigger_file'), name).toBe(false);
        const targets = [...conf.keys()].filter((k) => /^recovery_target(_(time|name|xid|lsn))?$/.test(k));
        expect(targets, name).toHaveLength(input.target ? 1 : 0);
      }
    });
  }

  it('quotes values so the server reads back exactly what was meant', async () => {
    const tricky = `cp /archive/it's\\here/%f "%p"`;
    const plan = await recoveryFiles({ version: 16, mode: 'recovery', restoreCommand: tricky, target: { type: 'lsn', value: '0/3000a60', inclusive: false } });
    const conf = parseConf(plan.files[0]!.content);
    expect(conf.get('restore_command')).toBe(tricky);
    expect(conf.get('recovery_target_lsn')).toBe('0/3000A60');
    expect(conf.get('recovery_target_inclusive')).toBe('off');
    expect(plan.files[0]!.content).toContain(`restore_command = 'cp /archive/it''s\\\\here/%f "%p"'`);
  });

  it('takes a settings path for layouts that keep postgresql.conf outside PGDATA', async () => {
    const settingsPath = '/etc/postgresql/15/main/conf.d/pgplay-recovery.conf';
    const plan = await recoveryFiles({ version: 15, ...CASES.standby!, settingsPath });
    expect(plan.files[0]!.path).toBe(settingsPath);
    expect((await recoveryFiles({ version: 11, ...CASES.standby!, settingsPath })).remove).toEqual([settingsPath]);
  });

  it('immediate, xid and explicit timelines render as PostgreSQL expects', () => {
    expect(recoverySettings({ version: 14, mode: 'recovery', restoreCommand: 'x %f %p', target: { type: 'immediate', action: 'shutdown', timeline: 3 } })).toEqual([
      { name: 'restore_command', value: 'x %f %p' },
      { name: 'recovery_target', value: 'immediate' },
      { name: 'recovery_target_timeline', value: '3' },
      { name: 'recovery_target_action', value: 'shutdown' },
    ]);
    expect(recoverySettings({ version: 12, mode: 'recovery', restoreCommand: 'x', target: { type: 'xid', value: '1234', inclusive: true } })).toContainEqual({
      name: 'recovery_target_xid',
      value: '1234',
    });
  });
});

describe('recoverySettings refuses what PostgreSQL would refuse, with a reason', () => {
  const bad = (input: RecoveryInput) => {
    try {
      recoverySettings(input);
    } catch (e) {
      expect(e).toBeInstanceOf(PgplayError);
      expect((e as PgplayError).code).toBe('SEMANTIC');
      return e as PgplayError;
    }
    throw new Error('expected a PgplayError');
  };

  it('a password in primary_conninfo, in either form', () => {
    for (const ci of ["host=db1 user=replicator password='s3cret'", 'postgresql://replicator:s3cret@db1:5432/postgres', 'host=db1 PASSWORD=x']) {
      const e = bad({ version: 15, mode: 'standby', primaryConninfo: ci });
      expect(e.message).toBe('primary_conninfo must not contain a password');
      expect(e.expected).toContain('.pgpass');
    }
  });

  it('a standby with neither conninfo nor restore command, a recovery without restore command', () => {
    expect(bad({ version: 15, mode: 'standby' }).message).toContain('primary_conninfo');
    expect(bad({ version: 15, mode: 'recovery', target: { type: 'immediate' } }).message).toBe(
      'targeted recovery needs a restore_command to fetch archived WAL',
    );
  });

  it('malformed targets', () => {
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'lsn', value: 'zz' } }).message).toBe('"zz" is not an LSN');
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'time', value: 'yesterday' } }).expected).toContain('timestamp');
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'immediate', value: 'now' } }).message).toContain('takes no value');
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'name' } }).message).toBe('a recovery target of type name needs a value');
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'name', value: 'p', inclusive: false } }).message).toBe(
      'inclusive does not apply to a recovery target of type name',
    );
    expect(bad({ version: 15, mode: 'recovery', restoreCommand: 'x', target: { type: 'xid', value: '12', timeline: 0 } }).message).toContain('timeline');
  });

  it('version-specific settings through extra: trigger files and standby_mode', () => {
    expect(bad({ version: 16, mode: 'standby', primaryConninfo: 'host=a', extra: { promote_trigger_file: '/tmp/p' } }).message).toBe(
      'promote_trigger_file does not exist in PostgreSQL 16',
    );
    expect(bad({ version: 12, mode: 'standby', primaryConninfo: 'host=a', extra: { trigger_file: '/tmp/p' } }).expected).toBe('promote_trigger_file');
    expect(recoverySettings({ version: 15, mode: 'standby', primaryConninfo: 'host=a', extra: { promote_trigger_file: '/tmp/p' } })).toContainEqual({
      name: 'promote_trigger_file',
      value: '/tmp/p',
    });
    expect(recoverySettings({ version: 11, mode: 'standby', primaryConninfo: 'host=a', extra: { trigger_file: '/tmp/p' } })).toContainEqual({
      name: 'trigger_file',
      value: '/tmp/p',
    });
    expect(bad({ version: 13, mode: 'standby', primaryConninfo: 'host=a', extra: { standby_mode: 'on' } }).expected).toContain('standby.signal');
    expect(bad({ version: 13, mode: 'recovery', restoreCommand: 'x', extra: { recovery_target_time: '2024-01-01 00:00:00' } }).message).toBe(
      'recovery_target_time is set through the recovery target',
    );
  });

  it('unsupported majors', () => {
    expect(bad({ version: 10, mode: 'standby', primaryConninfo: 'host=a' }).message).toBe('PostgreSQL 10 is not supported');
  });
});

describe('recoveryChangeApplyBy', () => {
  const ci = (host: string) => [{ name: 'primary_conninfo', value: `host=${host}` }];
  const rc = (cmd: string) => [{ name: 'restore_command', value: cmd }];
  it('primary_conninfo: restart up to 12, reload from 13', () => {
    expect(recoveryChangeApplyBy(11, ci('a'), ci('b'))).toBe('restart');
    expect(recoveryChangeApplyBy(12, ci('a'), ci('b'))).toBe('restart');
    expect(recoveryChangeApplyBy(13, ci('a'), ci('b'))).toBe('reload');
    expect(recoveryChangeApplyBy(17, ci('a'), ci('b'))).toBe('reload');
  });
  it('restore_command: restart up to 13, reload from 14', () => {
    expect(recoveryChangeApplyBy(13, rc('a'), rc('b'))).toBe('restart');
    expect(recoveryChangeApplyBy(14, rc('a'), rc('b'))).toBe('reload');
  });
  it('nothing changed, or a mix that needs a restart', () => {
    expect(recoveryChangeApplyBy(15, ci('a'), ci('a'))).toBe('none');
    expect(recoveryChangeApplyBy(15, [...ci('a'), { name: 'recovery_target_name', value: 'x' }], ci('b'))).toBe('restart');
  });
});
