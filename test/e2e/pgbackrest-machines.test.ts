/**
 * pgBackRest as it is installed, on separate machines (issue 11 item 4), subnet 127.0.43.x: a repository
 * machine (no PostgreSQL) and a primary machine with Debian's PostgreSQL 15 (pg_createcluster), both with
 * Debian's pgbackrest package as it ships (/etc/pgbackrest.conf, no /etc/pgbackrest), reached over SSH
 * with inventories that set no host vars.
 *
 * - nightly-backup on the primary alone: pgbackrest.conf goes where pgBackRest reads it by default
 *   (/etc/pgbackrest/pgbackrest.conf, the directory created for the PostgreSQL OS user), the package's
 *   file is moved aside (one config, not two that disagree), archive_command needs no --config, a full
 *   backup is taken, and a second run leaves the config alone.
 * - include/backup/pgbackrest/trust.yml: ed25519 key pairs for postgres, authorized_keys restricted to
 *   pgbackrest, known_hosts with each machine's real host key; a second run changes nothing.
 * - an encrypted repository on the repository machine: nightly-backup (stanza-create, check through
 *   the primary's archive-push, a full backup), then archive-get and a standby restore on the primary
 *   read it through their pgbackrest.conf (0640, postgres); the passphrase is in no output, journal or
 *   pgBackRest log, and --diff masks it.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runsDir } from '../../src/journal/paths.js';
import { CONFIG_DIR, startMachines, type Machine, type Machines } from '../support/machines.js';
import { jsonEvents, pgplay, rigConnection, type JsonEvent } from './fixtures/ssh/support.js';

const SUBNET = '127.0.43';
const PACKAGE_CONF = readFileSync('/etc/pgbackrest.conf', 'utf8');

describe('pgBackRest as installed, on separate machines', () => {
  let rig: Machines;
  let work: string;
  let repo: Machine;
  let db1: Machine;
  const cipherPass = `pp-${randomBytes(16).toString('hex')}`;

  beforeAll(async () => {
    rig = await startMachines([
      { name: 'repo', address: `${SUBNET}.1`, postgres: false },
      { name: 'db1', address: `${SUBNET}.2` },
    ]);
    repo = rig.machines.repo!;
    db1 = rig.machines.db1!;
    work = await mkdtemp(join(tmpdir(), 'pgplay-pgbackrest-machines-'));
    await writeFile(join(work, 'cipher-pass'), `${cipherPass}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** As a DBA writes it for Debian hosts: no pgdata, no host vars. */
  async function inventory(name: string, o: { repoHost: boolean }): Promise<string> {
    const file = join(work, name);
    const lines = [
      'cluster: main',
      'postgres: { version: 15, layout: debian }',
      `connection: ${JSON.stringify({ ...rigConnection(rig), become: 'postgres' })}`,
      o.repoHost
        ? `backup: { tool: pgbackrest, repoHost: repo, cipherPass: { file: ${join(work, 'cipher-pass')} } }`
        : 'backup: { tool: pgbackrest }',
      'hosts:',
      `  db1: { address: ${db1.address}, role: primary }`,
      ...(o.repoHost ? [`  repo: { address: ${repo.address}, role: repository }`] : []),
      '',
    ];
    await writeFile(file, lines.join('\n'));
    return file;
  }

  async function sh(m: Machine, script: string, user?: string): Promise<string> {
    const r = await m.exec(['sh', '-c', script], { user });
    if (r.exitCode !== 0) throw new Error(`${m.name}: ${script} exited ${r.exitCode}: ${r.stderr}`);
    return r.stdout.trim();
  }

  function statuses(events: JsonEvent[], prefix: string): string[] {
    return events.filter((e) => e.type === 'step-result' && e.step!.startsWith(prefix)).map((e) => `${e.step}@${e.host}=${e.status}`);
  }

  function journals(stateDir: string): string {
    const dir = runsDir(stateDir);
    return readdirSync(dir)
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
  }

  it("nightly-backup writes pgBackRest's default config beside Debian's package file, moves that aside and backs up", async () => {
    expect(await sh(db1, 'cat /etc/pgbackrest.conf')).toBe(PACKAGE_CONF.trim());
    expect((await db1.exec(['test', '-e', '/etc/pgbackrest'])).exitCode).toBe(1);
    const inv = await inventory('primary-only.yml', { repoHost: false });
    const stateDir = join(work, 'state-local');
    const r = await pgplay(['run', 'nightly-backup', '-i', inv, '--yes', '--output', 'json'], stateDir);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);

    expect(await sh(db1, 'stat -c "%U %a" /etc/pgbackrest /etc/pgbackrest/pgbackrest.conf')).toBe('postgres 750\npostgres 640');
    expect((await db1.exec(['test', '-e', '/etc/pgbackrest.conf'])).exitCode).toBe(1);
    expect(await sh(db1, 'cat /etc/pgbackrest.conf.pgplay-prev')).toBe(PACKAGE_CONF.trim());
    const conf = await sh(db1, 'cat /etc/pgbackrest/pgbackrest.conf');
    expect(conf).toContain('repo1-path=/var/lib/pgbackrest');
    expect(conf).toContain('pg1-path=/var/lib/postgresql/15/main');
    // At pgBackRest's default path nothing needs --config.
    expect(await sh(db1, `grep '^archive_command' ${CONFIG_DIR}/conf.d/pgplay.conf`)).toBe(
      "archive_command = 'pgbackrest --stanza=main archive-push %p'",
    );
    const info = JSON.parse(await sh(db1, 'pgbackrest --stanza=main info --output=json', 'postgres')) as Array<{ backup: Array<{ type: string }> }>;
    expect(info[0]!.backup.map((b) => b.type)).toEqual(['full']);
    expect(await db1.psql('select archived_count > 0 and failed_count = 0 from pg_stat_archiver')).toBe('t');

    // A second run: the config is in place, nothing to move.
    const again = await pgplay(['run', 'nightly-backup', '-i', inv, '--yes', '--output', 'json'], stateDir);
    expect(again.exitCode, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(statuses(jsonEvents(again.stdout), 'pgbackrest/conf/')).toEqual([
      'pgbackrest/conf/dir@db1=ok',
      'pgbackrest/conf/file@db1=ok',
      // its `removes` guard: no /etc/pgbackrest.conf any more
      'pgbackrest/conf/package-file@db1=ok',
    ]);
  });

  it('include/backup/pgbackrest/trust.yml sets up SSH trust for postgres with the real host keys; a second run changes nothing', async () => {
    const inv = await inventory('repo-host.yml', { repoHost: true });
    const trust = join(work, 'trust.yml');
    await writeFile(
      trust,
      [
        'name: trust',
        'steps:',
        '  - id: trust',
        '    hosts: all',
        `    include: { playbook: ${resolve('playbooks/include/backup/pgbackrest/trust.yml')} }`,
        '',
      ].join('\n'),
    );
    const stateDir = join(work, 'state-trust');
    const r = await pgplay(['run', trust, '-i', inv, '--output', 'json'], stateDir);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);

    const pub: Record<string, string> = {};
    for (const m of [repo, db1]) {
      expect(await sh(m, 'stat -c "%U %a" ~postgres/.ssh ~postgres/.ssh/id_ed25519 ~postgres/.ssh/authorized_keys ~postgres/.ssh/known_hosts')).toBe(
        'postgres 700\npostgres 600\npostgres 600\npostgres 644',
      );
      pub[m.name] = await sh(m, 'cat ~postgres/.ssh/id_ed25519.pub');
      expect(pub[m.name]).toMatch(/^ssh-ed25519 \S+ pgbackrest@/);
    }
    const restricted = 'no-agent-forwarding,no-X11-forwarding,no-port-forwarding,command="pgbackrest ${SSH_ORIGINAL_COMMAND#* }" ';
    expect(await sh(db1, 'cat ~postgres/.ssh/authorized_keys')).toBe(restricted + pub.repo);
    expect(await sh(repo, 'cat ~postgres/.ssh/authorized_keys')).toBe(restricted + pub.db1);
    // The host key each sshd really serves, read on that machine: nothing scanned off the network.
    expect(await sh(db1, 'cat ~postgres/.ssh/known_hosts')).toBe(`${repo.address} ${repo.hostPublicKey}`);
    expect(await sh(repo, 'cat ~postgres/.ssh/known_hosts')).toBe(`${db1.address} ${db1.hostPublicKey}`);
    // postgres on the repository reaches postgres on db1 with strict host key checking, and may only run pgbackrest.
    const version = await repo.exec(
      ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', `postgres@${db1.address}`, '/usr/bin/pgbackrest version'],
      { user: 'postgres' },
    );
    expect(version.exitCode, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe('pgBackRest 2.45');

    const again = await pgplay(['run', trust, '-i', inv, '--output', 'json'], stateDir);
    expect(again.exitCode, `${again.stdout}\n${again.stderr}`).toBe(0);
    const end = jsonEvents(again.stdout).find((e) => e.type === 'run-end')!;
    expect(Object.values(end.recap!).map((h) => h.changed)).toEqual([0, 0]);
  });

  it('an encrypted repository on the repository machine: archiving, a backup, archive-get and a restore; the passphrase is never shown', async () => {
    const inv = await inventory('repo-host.yml', { repoHost: true });
    // What prepare.yml will do (slice s3), done here by hand: the repository host's pg_dumpall of the
    // globals reaches the primary over TCP as the superuser, with the password in its .pgpass.
    const password = randomBytes(12).toString('hex');
    await db1.psql(`ALTER ROLE postgres PASSWORD '${password}'`);
    await sh(db1, `echo 'host all postgres ${repo.address}/32 scram-sha-256' >> ${CONFIG_DIR}/pg_hba.conf`, 'postgres');
    await sh(db1, 'pg_ctlcluster 15 main reload');
    await sh(repo, `umask 077 && echo '${db1.address}:5432:*:postgres:${password}' > /var/lib/postgresql/.pgpass`, 'postgres');

    const stateDir = join(work, 'state-encrypted');
    const r = await pgplay(['run', 'nightly-backup', '-i', inv, '--yes', '--diff', '--output', 'json'], stateDir);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);

    for (const m of [repo, db1]) {
      expect(await sh(m, 'stat -c "%U %a" /etc/pgbackrest/pgbackrest.conf')).toBe('postgres 640');
      const conf = await sh(m, 'cat /etc/pgbackrest/pgbackrest.conf');
      expect(conf).toContain('repo1-cipher-type=aes-256-cbc');
      expect(conf).toContain(`repo1-cipher-pass=${cipherPass}`);
    }
    expect(await sh(db1, 'cat /etc/pgbackrest/pgbackrest.conf')).toContain(`repo1-host=${repo.address}\nrepo1-host-user=postgres`);
    expect(await sh(repo, 'cat /etc/pgbackrest/pgbackrest.conf')).toContain(`pg1-host=${db1.address}\npg1-host-user=postgres`);
    const info = JSON.parse(await sh(repo, 'pgbackrest --stanza=main info --output=json', 'postgres')) as Array<{
      cipher: string;
      backup: Array<{ type: string }>;
      archive: Array<{ max: string }>;
    }>;
    expect(info[0]!.cipher).toBe('aes-256-cbc');
    expect(info[0]!.backup.map((b) => b.type)).toEqual(['full']);
    // Without the passphrase the repository cannot be read.
    const blind = await repo.exec(['pgbackrest', '--stanza=main', '--repo1-cipher-pass=wrong', 'info', '--output=json'], { user: 'postgres' });
    expect(blind.stdout + blind.stderr).not.toContain('"type":"full"');

    // The server's own archive-push reached the encrypted repository (pgbackrest check ran through it),
    // and archive-get, as restore_command runs it on the primary machine, reads it back.
    expect(await db1.psql('select failed_count = 0 and archived_count > 0 from pg_stat_archiver')).toBe('t');
    const segment = info[0]!.archive[0]!.max;
    await sh(db1, `pgbackrest --stanza=main archive-get ${segment} /var/lib/postgresql/got-${segment}`, 'postgres');
    expect(await sh(db1, `stat -c %s /var/lib/postgresql/got-${segment}`)).toBe(String(16 * 1024 * 1024));
    // A standby restore on the primary machine, into a scratch directory, from its own pgbackrest.conf.
    await sh(db1, 'pgbackrest --stanza=main --pg1-path=/var/lib/postgresql/restored restore --type=standby', 'postgres');
    expect(await sh(db1, 'cat /var/lib/postgresql/restored/PG_VERSION && test -e /var/lib/postgresql/restored/standby.signal && echo standby')).toBe('15\nstandby');

    // --diff shows the new line masked; the passphrase is nowhere pgplay writes nor in pgBackRest's logs.
    expect(r.stdout).toMatch(/repo1-cipher-pass=\*{8}/);
    for (const text of [r.stdout, r.stderr, journals(stateDir)]) expect(text).not.toContain(cipherPass);
    for (const m of [repo, db1]) expect(await sh(m, 'cat /var/log/pgbackrest/*.log')).not.toContain(cipherPass);
  });
});
