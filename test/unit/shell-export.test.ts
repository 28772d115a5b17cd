import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import blockAction from '../../src/actions/block.js';
import pgpassAction from '../../src/actions/pgpass.js';
import { writeFileLines } from '../../src/actions/shell-export.js';
import { Redactor } from '../../src/core/redact.js';
import type { Action, ActionContext } from '../../src/engine/action.js';
import { ShellExportRecorder } from '../../src/engine/shell-export.js';
import type { Step } from '../../src/model/playbook.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { actionContext, host } from './support/engine-harness.js';

/*
 * The break-glass export's pieces that need no server: the script's shape and refusals (the recorder),
 * and the shell the file-editing actions write, run by sh on real files. The whole export building a
 * streaming standby on the machines rig is test/e2e/export-shell-machines.test.ts.
 */

const sh = (script: string, env: Record<string, string> = {}) => execa('sh', ['-ec', script], { env: { ...process.env, ...env }, reject: false });

function context(t: FakeTransport, secrets: Record<string, string> = {}): ActionContext {
  return actionContext({
    transport: t,
    hosts: { db1: { ...host('db1', 'primary'), address: '10.0.0.1' }, db2: host('db2') },
    inventory: { cluster: 'main', postgres: { version: 15 }, hosts: {}, replication: { user: 'replicator', password: { env: 'REPL_PW' } } } as never,
    secret: async (ref) => secrets[(ref as { env: string }).env],
  });
}

describe('break-glass export: the shell the actions write', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-shell-export-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writeFileLines writes exactly the content: quotes, $, backslashes, the delimiter as a line, no final newline', async () => {
    for (const [i, content] of ["a 'quoted' $HOME `x` \\n\nPGPLAY_EOF\nlast\n", 'no newline at the end', ''].entries()) {
      const path = join(dir, `f${i}`);
      const r = await sh(writeFileLines(path, content, { mode: 0o640 }).join('\n'));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await readFile(path, 'utf8')).toBe(content);
      expect((await stat(path)).mode & 0o777).toBe(0o640);
    }
  });

  it('block: replaces pgplay\'s block in place, or inserts it before the first entry, keeping every other line', async () => {
    const path = join(dir, 'pg_hba.conf');
    const t = new FakeTransport('db2');
    const ctx = { ...context(t), renderTemplate: async () => 'host replication replicator 10.0.0.2/32 scram-sha-256\n' };
    const input = { path, template: 'x.hbs', create: true, mode: '0600' };
    const user = '# a comment\n\nlocal all postgres peer\nhost all all 0.0.0.0/0 reject\n';
    for (const [before, after] of [
      [user, '# a comment\n\n# BEGIN pgplay managed block\nhost replication replicator 10.0.0.2/32 scram-sha-256\n# END pgplay managed block\n\nlocal all postgres peer\nhost all all 0.0.0.0/0 reject\n'],
      ['local all all trust\n# BEGIN pgplay managed block\nold rule\n# END pgplay managed block\n# tail\n', 'local all all trust\n# BEGIN pgplay managed block\nhost replication replicator 10.0.0.2/32 scram-sha-256\n# END pgplay managed block\n# tail\n'],
    ] as const) {
      await writeFile(path, before);
      t.files.set(path, { data: Buffer.from(before), mode: 0o640, owner: 'root', group: 'root' });
      const exported = await blockAction.exportShell!(ctx, input, { changed: true });
      const r = await sh(exported.commands!.join('\n'));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await readFile(path, 'utf8')).toBe(after);
      expect(await readFile(`${path}.pgplay-prev`, 'utf8')).toBe(before);
    }
  });

  it('pgpass: the password from the environment, escaped for .pgpass; the script holds only the reference', async () => {
    const path = join(dir, 'pgpass');
    await writeFile(path, 'other:5432:*:u:keep\n10.0.0.1:5432:replication:replicator:old\n');
    const secret = 'pa:ss\\word';
    const ctx = context(new FakeTransport('db2'), { REPL_PW: secret });
    const exported = await pgpassAction.exportShell!(ctx, { path, entries: [{ host: 'db1', database: 'replication' }] }, { changed: true });
    const script = exported.commands!.join('\n');
    expect(script).not.toContain(secret);
    expect(exported.env).toEqual(['REPL_PW']);
    const r = await sh(script, { REPL_PW: secret });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await readFile(path, 'utf8')).toBe('other:5432:*:u:keep\n10.0.0.1:5432:replication:replicator:pa\\:ss\\\\word\n');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });
});

describe('break-glass export: the script', () => {
  const step = (id: string): Step => ({ id, name: `step ${id}`, hosts: 'all' }) as Step;
  const exporting: Action<any> = {
    name: 'x',
    summary: '',
    schema: {},
    check: async () => ({ changed: true }),
    apply: async () => ({ changed: true }),
    exportShell: async (_ctx, input: { line: string }) => ({ commands: [input.line], comments: ['a check'] }),
  };
  const ctx = (name: string) => ({ ...context(new FakeTransport(name)), host: host(name) });

  it('parts follow the plan across hosts; checks are comments; sh -n accepts it', async () => {
    const r = new ShellExportRecorder(new Redactor());
    await r.planned(step('a'), 'db2', exporting, ctx('db2'), { line: 'echo one' }, { changed: true });
    await r.planned(step('b'), 'db2', exporting, ctx('db2'), { line: 'echo two' }, { changed: true });
    r.skipped(step('c'), 'db1', 'when: false');
    await r.planned(step('d'), 'db1', exporting, ctx('db1'), { line: 'echo three' }, { changed: true });
    await r.planned(step('e'), 'db2', exporting, ctx('db2'), { line: 'echo four' }, { changed: false, msg: 'already' });
    const script = r.render({ playbook: 'p.yml', file: '/x.sh' });
    expect(script).toContain('#   part 1: on db2 (127.0.0.1): sh /x.sh 1\n#   part 2: on db1 (10.0.0.1): sh /x.sh 2\n');
    expect(script).toContain('  # step c (on db1: not this part\'s host): step c\n  #   skipped at plan time (when: false)');
    // Nothing to do at plan time: the command is there for review, commented out.
    expect(script).toContain('  #   nothing to do at plan time; the commands, for review:\n  #     echo four');
    const file = join(tmpdir(), `pgplay-export-${process.pid}.sh`);
    await writeFile(file, script);
    try {
      expect((await execa('sh', ['-n', file], { reject: false })).exitCode).toBe(0);
      expect((await execa('sh', [file, '2'])).stdout).toBe('three');
      expect((await execa('sh', [file, '1'])).stdout).toBe('one\ntwo');
      expect((await execa('sh', [file], { reject: false })).exitCode).toBe(2);
    } finally {
      await rm(file, { force: true });
    }
  });

  it('refuses, naming the step and host, an action without export or a secret value in a command', async () => {
    const redactor = new Redactor();
    redactor.add('s3cret-value');
    const r = new ShellExportRecorder(redactor);
    const { exportShell: _, ...mute } = exporting;
    await r.planned(step('backup'), 'bk1', { ...mute, name: 'pgbackrest' }, ctx('bk1'), {}, { changed: true });
    await r.planned(step('leak'), 'db1', exporting, ctx('db1'), { line: 'echo s3cret-value' }, { changed: true });
    expect(() => r.render({ playbook: 'p.yml', file: '/x.sh' })).toThrow(
      /step backup on bk1: the pgbackrest action cannot be exported to shell; step leak on db1: its commands would hold a secret value/,
    );
  });
});
