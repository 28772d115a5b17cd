/**
 * The break-glass export of the barman action (issue 16 item 5 with issue 13's Barman): what the shipped
 * playbooks run of it. recover runs on the database host to fill and reaches Barman on the repository
 * host over the SSH trust pgplay set up (the PostgreSQL OS user to barman@repository): the exported
 * lines are run here by sh with stand-ins for runuser, ssh and barman that record the argv barman
 * would get, so the quoting is tested for real, through the remote shell too, with a hostile target.
 * The read-only commands (version, check, list-backups, show-backup) are comments; backup, switch-wal,
 * cron and create-slot are barman on the repository host. No secret appears.
 */
import { execa } from 'execa';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import barmanAction from '../../src/actions/barman.js';
import type { BarmanInput } from '../../src/actions/barman-input.js';
import { Redactor } from '../../src/core/redact.js';
import type { ActionContext } from '../../src/engine/action.js';
import { ShellExportRecorder } from '../../src/engine/shell-export.js';
import type { Host } from '../../src/model/inventory.js';
import type { Step } from '../../src/model/playbook.js';
import { actionContext, host } from './support/engine-harness.js';

const BARMAN_PASSWORD = 'bm-0123456789abcdef0123';

function context(on: Host): ActionContext {
  const redactor = new Redactor();
  redactor.add(BARMAN_PASSWORD);
  const db1 = { ...host('db1', 'primary'), address: '127.0.63.1' };
  const db2 = { ...host('db2'), address: '127.0.63.2', pgdata: '/var/lib/postgresql/15/main' };
  const bk1 = { ...host('bk1', 'repository' as never), address: '127.0.63.3', pgdata: undefined } as unknown as Host;
  const hosts = { db1, db2, bk1 };
  return actionContext({
    host: hosts[on.name as keyof typeof hosts] ?? on,
    hosts,
    inventory: { cluster: 'main', postgres: { version: 15 }, hosts: {}, backup: { tool: 'barman', repoHost: 'bk1', barman: { server: 'main', password: { env: 'PGPLAY_BARMAN_PASSWORD' } } } } as never,
    redactor,
    secret: async () => BARMAN_PASSWORD,
  });
}

const db2 = () => context(host('db2'));
const bk1 = () => context(host('bk1'));
const PLANNED = { changed: true, msg: 'would recover', data: { id: '20261203T205952', pgdata: '/var/lib/postgresql/15/main', kept: false, occupied: true, notes: [] } };

describe('break-glass export: the barman action', () => {
  let dir: string;
  let bin: string;
  let log: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-barman-export-'));
    bin = join(dir, 'bin');
    log = join(dir, 'calls.jsonl');
    await execa('mkdir', ['-p', bin]);
    // runuser -u USER -- CMD...: runs CMD (the user is recorded). ssh OPTIONS... DEST REMOTE: the remote
    // shell runs REMOTE, as sshd does. barman: its argv. One tab-separated line per call.
    const record = `printf '%s' "$(basename "$0")" >> "$LOG"; for a in "$@"; do printf '\\t%s' "$a" >> "$LOG"; done; printf '\\n' >> "$LOG"`;
    await writeFile(join(bin, 'runuser'), `#!/bin/sh\n${record}\nshift 3\nexec "$@"\n`);
    await writeFile(join(bin, 'ssh'), `#!/bin/sh\n${record}\nfor a in "$@"; do last=$a; done\nexec sh -c "$last"\n`);
    await writeFile(join(bin, 'barman'), `#!/bin/sh\n${record}\n`);
    for (const f of ['runuser', 'ssh', 'barman']) await chmod(join(bin, f), 0o755);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runLines(lines: string[]): Promise<string[][]> {
    await rm(log, { force: true });
    const r = await execa('sh', ['-euc', lines.join('\n')], { env: { PATH: `${bin}:/usr/bin:/bin`, LOG: log }, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    return (await readFile(log, 'utf8')).trim().split('\n').map((l) => l.split('\t'));
  }

  it('recover: from the database host, barman keep, recover with its options and release over SSH to barman@repository; PGDATA emptied first, pg_control first', async () => {
    const hostile = `it's "x" $(touch ${dir}/pwned) \`id\``;
    const input: BarmanInput = { command: 'recover', target_name: hostile, target_action: 'promote', get_wal: true };
    const exported = await barmanAction.exportShell!(db2(), input, PLANNED);
    const lines = exported.commands!;
    expect(lines.join('\n')).not.toContain(BARMAN_PASSWORD);
    // The guard that needs nothing of pgplay is checked when the script runs; the others were checked at plan time.
    expect(lines[0]).toMatch(/^if runuser -u postgres -- \/usr\/lib\/postgresql\/15\/bin\/pg_ctl status -D \/var\/lib\/postgresql\/15\/main >\/dev\/null 2>&1; then echo 'a server runs in .*: stop it first; nothing was recovered' >&2; exit 3; fi$/);
    expect(lines[1]).toBe('runuser -u postgres -- rm -f -- /var/lib/postgresql/15/main/global/pg_control');
    expect(lines[2]).toBe('runuser -u postgres -- find /var/lib/postgresql/15/main -mindepth 1 -maxdepth 1 -exec rm -rf -- \'{}\' +');
    expect(exported.comments!.join('\n')).toMatch(/barman keep --release main 20261203T205952/);

    // Run the Barman lines (the wipe is base_restore's, run for real in shell-export-coverage).
    const calls = (await runLines(lines.slice(3))).filter((c) => c[0] === 'barman');
    expect(calls).toEqual([
      ['barman', 'keep', '--target', 'full', 'main', '20261203T205952'],
      [
        'barman', 'recover', '--remote-ssh-command', 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes postgres@127.0.63.2',
        '--target-name', hostile, '--target-action', 'promote', '--get-wal', 'main', '20261203T205952', '/var/lib/postgresql/15/main',
      ],
      ['barman', 'keep', '--release', 'main', '20261203T205952'],
    ]);
    const all = await runLines(lines.slice(3));
    // Each barman call goes as postgres through ssh to barman on the repository host, never as root.
    expect(all.filter((c) => c[0] === 'ssh').map((c) => c.slice(-2, -1)[0])).toEqual(['barman@127.0.63.3', 'barman@127.0.63.3', 'barman@127.0.63.3']);
    expect(all.filter((c) => c[0] === 'runuser').map((c) => c[2])).toEqual(['postgres', 'postgres', 'postgres']);
    expect(await execa('test', ['-e', join(dir, 'pwned')], { reject: false }).then((r) => r.exitCode)).toBe(1);
  });

  it('recover of a backup that was kept already: no keep, no release (the annotation is the user\'s)', async () => {
    const exported = await barmanAction.exportShell!(db2(), { command: 'recover', backup_id: '20261203T205952' }, { ...PLANNED, data: { ...PLANNED.data, kept: true } });
    const calls = (await runLines(exported.commands!.slice(3))).filter((c) => c[0] === 'barman');
    expect(calls.map((c) => c[1])).toEqual(['recover']);
  });

  it('the repository host\'s commands: barman as barman there; the read-only ones are comments', async () => {
    const lines = async (input: BarmanInput) => (await barmanAction.exportShell!(bk1(), input, { changed: true }));
    expect((await lines({ command: 'backup' })).commands).toEqual(['runuser -u barman -- barman backup --wait main']);
    expect((await lines({ command: 'switch-wal', archive_timeout: 90 })).commands).toEqual(['runuser -u barman -- barman switch-wal --force --archive --archive-timeout 90 main']);
    expect((await lines({ command: 'cron' })).commands).toEqual(['runuser -u barman -- barman cron']);
    expect((await lines({ command: 'create-slot' })).commands).toEqual(['runuser -u barman -- barman receive-wal --create-slot main']);
    expect((await lines({ command: 'delete', backup_id: '20261203T205950' })).commands).toEqual(['runuser -u barman -- barman delete main 20261203T205950']);
    const check = await lines({ command: 'check', except: ['minimum_redundancy_requirements', 'backup_maximum_age'] });
    expect(check.commands ?? []).toEqual([]);
    expect(check.comments).toEqual([
      'check: every check of `runuser -u barman -- barman check main` is OK, except minimum_redundancy_requirements, backup_maximum_age (pgplay refuses to go on otherwise)',
    ]);
    expect((await lines({ command: 'version' })).comments).toEqual(['check: `runuser -u barman -- barman --version` is a Barman that serves PostgreSQL 15 (pgplay refuses to go on otherwise)']);
    expect((await lines({ command: 'list-backups' })).comments).toEqual(['reads: runuser -u barman -- barman list-backups main']);
    expect((await lines({ command: 'show-backup' })).comments).toEqual(['reads: runuser -u barman -- barman show-backup main latest']);
  });

  it('reset-receive-wal (Barman follows a new primary): receive-wal stopped, then its position reset, as barman there', async () => {
    const exported = await barmanAction.exportShell!(bk1(), { command: 'reset-receive-wal', primary: 'db2' }, { changed: true });
    expect(exported.commands).toEqual(['runuser -u barman -- barman receive-wal --stop main', 'runuser -u barman -- barman receive-wal --reset main']);
    expect(exported.comments!.join('\n')).toContain('(db2)');
  });

  it('backup.barman.local: Barman beside the servers as their OS user, with its own -c config; recover writes PGDATA itself (no SSH)', async () => {
    const local = (on: string) => {
      const ctx = context(host(on));
      const bk = { ...ctx.hosts.bk1!, address: '127.0.63.2' } as Host;
      const inventory = { ...ctx.inventory, backup: { ...ctx.inventory.backup!, barman: { ...ctx.inventory.backup!.barman!, local: true, config: '/srv/lab/bk1/barman/barman.conf' } } };
      return { ...ctx, hosts: { ...ctx.hosts, bk1: bk }, host: on === 'bk1' ? bk : ctx.host, inventory } as ActionContext;
    };
    const recover = await barmanAction.exportShell!(local('db2'), { command: 'recover' }, PLANNED);
    const calls = (await runLines(recover.commands!.slice(3))).filter((c) => c[0] === 'barman' || c[0] === 'ssh');
    expect(calls).toEqual([
      ['barman', '-c', '/srv/lab/bk1/barman/barman.conf', 'keep', '--target', 'full', 'main', '20261203T205952'],
      ['barman', '-c', '/srv/lab/bk1/barman/barman.conf', 'recover', 'main', '20261203T205952', '/var/lib/postgresql/15/main'],
      ['barman', '-c', '/srv/lab/bk1/barman/barman.conf', 'keep', '--release', 'main', '20261203T205952'],
    ]);
    expect(recover.comments!.join('\n')).toContain('writes /var/lib/postgresql/15/main itself');
    expect((await barmanAction.exportShell!(local('bk1'), { command: 'backup' }, { changed: true })).commands).toEqual([
      'runuser -u postgres -- barman -c /srv/lab/bk1/barman/barman.conf backup --wait main',
    ]);
  });

  it('in a script: a recover step renders with no secret; the ones that cannot run say why', async () => {
    const r = new ShellExportRecorder(db2().redactor);
    const step = (id: string) => ({ id, name: id, hosts: 'db2' }) as Step;
    await r.planned(step('build/restore-barman'), 'db2', barmanAction, db2(), { command: 'recover' }, PLANNED);
    const script = r.render({ playbook: 'standby-from-backup.yml', file: '/x.sh' });
    expect(script).toContain("barman@127.0.63.3 'barman recover --remote-ssh-command '");
    expect(script).not.toContain(BARMAN_PASSWORD);
    await expect(barmanAction.exportShell!(bk1(), { command: 'delete' }, { changed: true })).rejects.toThrow(/barman delete needs backup_id/);
  });
});
