/**
 * The rig of separate machines (test/support/machines.ts) proves itself: two machines, each an sshd in
 * its own mount namespace at its own 127.0.42.x:22 with a Debian PostgreSQL 15 made by pg_createcluster
 * and started by pg_ctlcluster. Over pgplay's SSH transport (the CLI, a playbook of command steps) each
 * machine shows its own /etc/postgresql/15/main and its own system identifier; what one machine writes
 * the other does not see; PostgreSQL on one is reachable from the other at its address; and after
 * teardown no process of the rig is left.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJournal } from '../../src/journal/reader.js';
import { runsDir } from '../../src/journal/paths.js';
import { alive, CONFIG_DIR, PG_CLUSTER, PG_VERSION, startMachines, type Machines } from '../support/machines.js';
import { pgplay, rigConnection } from './fixtures/ssh/support.js';

const PROBE = `name: machines-probe
steps:
  - id: config
    hosts: all
    command: { shell: "ls /etc/postgresql/${PG_VERSION}; grep -oE '^(listen_addresses|port) = [^[:space:]#]+' ${CONFIG_DIR}/postgresql.conf", changed_when: false }
    register: config
  - id: sysid
    hosts: all
    command: { argv: [psql, -XAtq, -d, postgres, -c, "select system_identifier from pg_control_system()"], changed_when: false }
    register: sysid
  - id: mark
    hosts: alpha
    become: root
    command: { shell: "echo written-on-alpha > /var/lib/postgresql/marker && mkdir -m 0750 /etc/pgbackrest" }
  - id: look
    hosts: all
    command: { shell: "cat /var/lib/postgresql/marker 2>/dev/null || echo no-marker; test -d /etc/pgbackrest && echo etc-pgbackrest || echo no-etc-pgbackrest", changed_when: false }
    register: look
`;

/** Every registered value of the newest run in stateDir, as `step.host` -> stdout. */
function registeredStdout(stateDir: string): Record<string, string> {
  const dir = runsDir(stateDir);
  const files = readdirSync(dir);
  const journal = readJournal(join(dir, files.filter((f) => f.endsWith('.jsonl')).sort().at(-1)!));
  return Object.fromEntries(journal.registered.map((r) => [`${r.step}.${r.host}`, String((r.value as { stdout: string }).stdout).trim()]));
}

/** A playbook whose only step would leave a trace on every machine. */
const TOUCH = `name: touch
steps:
  - id: touch
    hosts: all
    command: { argv: [touch, /var/lib/postgresql/touched] }
`;

describe('separate machines: two sshd mount namespaces with Debian PostgreSQL 15', () => {
  let rig: Machines;
  let work: string;
  let inventory: string;

  beforeAll(async () => {
    rig = await startMachines([{ name: 'alpha' }, { name: 'bravo' }]);
    // The figure for the report; no assertion on time.
    console.log(`machines rig: 2 machines up in ${rig.startupMs} ms`);
    work = await mkdtemp(join(tmpdir(), 'pgplay-machines-test-'));
    // As a DBA writes it for Debian hosts: the layout says where everything is, no pgdata, no host vars.
    inventory = await writeInventory('inventory.yml', 'layout: debian', {});
    await writeFile(join(work, 'probe.yml'), PROBE);
    await writeFile(join(work, 'touch.yml'), TOUCH);
  });

  /** An inventory for both machines: `postgres` adds to version 15, `pgdata` per machine name. */
  async function writeInventory(name: string, postgres: string, pgdata: Record<string, string | undefined>): Promise<string> {
    const file = join(work, name);
    const host = (n: string, rest: string) =>
      `  ${n}: { address: ${rig.machines[n]!.address}, ${rest}${pgdata[n] ? `, pgdata: ${pgdata[n]}` : ''} }`;
    await writeFile(
      file,
      [
        'cluster: machines',
        `postgres: { version: 15${postgres ? `, ${postgres}` : ''} }`,
        `connection: ${JSON.stringify({ ...rigConnection(rig), become: 'postgres' })}`,
        'hosts:',
        host('alpha', 'role: primary'),
        host('bravo', 'role: standby, upstream: alpha'),
        '',
      ].join('\n'),
    );
    return file;
  }

  afterAll(async () => {
    await rig?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('each sshd listens only on its own address, port 22', async () => {
    for (const m of Object.values(rig.machines)) {
      const { stdout } = await execa('ss', ['-ltnpH']);
      const mine = stdout.split('\n').filter((l) => l.includes(`pid=${m.pid},`));
      expect(mine.map((l) => l.trim().split(/\s+/)[3])).toEqual([`${m.address}:22`]);
    }
  });

  it('over SSH each machine has its own config, cluster and files', async () => {
    const stateDir = join(work, 'state-probe');
    const r = await pgplay(['run', join(work, 'probe.yml'), '-i', inventory, '--output', 'json'], stateDir);
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    const out = registeredStdout(stateDir);
    for (const m of Object.values(rig.machines)) {
      expect(out[`config.${m.name}`]).toBe(`${PG_CLUSTER}\nlisten_addresses = '${m.address}'\nport = 5432`);
    }
    const alphaId = await rig.machines.alpha!.psql('select system_identifier from pg_control_system()');
    const bravoId = await rig.machines.bravo!.psql('select system_identifier from pg_control_system()');
    expect(alphaId).toMatch(/^\d+$/);
    expect(bravoId).not.toBe(alphaId);
    expect(out['sysid.alpha']).toBe(alphaId);
    expect(out['sysid.bravo']).toBe(bravoId);
    expect(out['look.alpha']).toBe('written-on-alpha\netc-pgbackrest');
    expect(out['look.bravo']).toBe('no-marker\nno-etc-pgbackrest');
    // The same seen from inside the namespaces, and the machine's writes never reached this one.
    expect((await rig.machines.alpha!.exec(['cat', '/var/lib/postgresql/marker'])).stdout).toBe('written-on-alpha');
    expect((await rig.machines.bravo!.exec(['test', '-e', '/var/lib/postgresql/marker'])).exitCode).toBe(1);
    expect(existsSync('/etc/pgbackrest')).toBe(false);
  });

  it("each machine has its own /tmp (pgBackRest's default lock-path) and /var/lib: a stop file or a lock on one is not on another", async () => {
    const alpha = rig.machines.alpha!;
    const bravo = rig.machines.bravo!;
    const stop = await alpha.exec(['pgbackrest', '--config=/etc/pgbackrest.conf', '--stanza=main', 'stop'], { user: 'postgres' });
    expect(stop.exitCode, stop.stderr).toBe(0);
    expect((await alpha.exec(['test', '-f', '/tmp/pgbackrest/main.stop'])).exitCode).toBe(0);
    expect((await bravo.exec(['test', '-e', '/tmp/pgbackrest/main.stop'])).exitCode).toBe(1);
    expect(existsSync('/tmp/pgbackrest/main.stop')).toBe(false);
    // The same for /var/lib (pgplay's lock beside a repository in /var/lib/pgbackrest lives in /var/lib/.pgplay).
    expect((await alpha.exec(['mkdir', '-p', '/var/lib/.pgplay/locks/rig-probe'])).exitCode).toBe(0);
    expect((await bravo.exec(['test', '-e', '/var/lib/.pgplay/locks/rig-probe'])).exitCode).toBe(1);
    expect(existsSync('/var/lib/.pgplay/locks/rig-probe')).toBe(false);
    const mode = await alpha.exec(['stat', '-c', '%a', '/tmp']);
    expect(mode.stdout.trim()).toBe('1777');
    // The machine is still reachable over SSH with its private /tmp (sshd's files were carried in).
    const ssh = await execa('ssh', ['-i', rig.identityFile, '-o', `UserKnownHostsFile=${rig.knownHosts}`, '-o', 'BatchMode=yes', `root@${alpha.address}`, 'cat /tmp/pgbackrest/main.stop >/dev/null && echo reached'], { reject: false });
    expect(ssh.stdout.trim(), ssh.stderr).toBe('reached');
  });

  it("root's ~/.bashrc on a machine is Debian's, not that of the machine running the tests", async () => {
    const shipped = existsSync('/usr/share/base-files/dot.bashrc') ? readFileSync('/usr/share/base-files/dot.bashrc', 'utf8') : '';
    const ssh = await execa('ssh', ['-i', rig.identityFile, '-o', `UserKnownHostsFile=${rig.knownHosts}`, '-o', 'BatchMode=yes', `root@${rig.machines.alpha!.address}`, 'cat ~/.bashrc'], { reject: false });
    expect(ssh.exitCode, ssh.stderr).toBe(0);
    expect(ssh.stdout).toBe(shipped.trimEnd());
  });

  it("PostgreSQL on alpha is reachable from bravo at alpha's address:5432", async () => {
    const alpha = rig.machines.alpha!;
    const bravo = rig.machines.bravo!;
    const password = randomBytes(12).toString('hex');
    await alpha.psql(`ALTER ROLE postgres PASSWORD '${password}'`);
    const hba = `${CONFIG_DIR}/pg_hba.conf`;
    const add = await alpha.exec(['sh', '-c', `echo 'host all all 127.0.42.0/24 scram-sha-256' >> ${hba}`], { user: 'postgres' });
    expect(add.exitCode, add.stderr).toBe(0);
    const reload = await alpha.exec(['pg_ctlcluster', String(PG_VERSION), PG_CLUSTER, 'reload']);
    expect(reload.exitCode, reload.stderr).toBe(0);
    const fromBravo = await bravo.psql('select system_identifier from pg_control_system()', {
      host: alpha.address,
      env: { PGPASSWORD: password },
    });
    expect(fromBravo).toBe(await alpha.psql('select system_identifier from pg_control_system()'));
    expect(fromBravo).not.toBe(await bravo.psql('select system_identifier from pg_control_system()'));
  });

  describe('a server that contradicts the inventory stops the run before any step (exit 3)', () => {
    const PKG = '/var/lib/postgresql/15/main';
    const OTHER = '/var/lib/postgresql/15/other';
    const cases = [
      {
        what: "layout debian, alpha's pgdata is not the data_directory its server runs from",
        postgres: 'layout: debian',
        pgdata: { alpha: OTHER },
        says: [`alpha: the server at /var/run/postgresql port 5432 runs from data_directory ${PKG}, but the inventory's pgdata is ${OTHER}`],
      },
      {
        what: 'layout pgdata (the default), pgdata not the data_directory',
        postgres: '',
        pgdata: { alpha: OTHER, bravo: PKG },
        says: [
          `alpha: the server at /var/run/postgresql port 5432 runs from data_directory ${PKG}, but the inventory's pgdata is ${OTHER}`,
          // bravo's pgdata is right, but with layout pgdata its config would be in PGDATA, and it is not.
          `bravo: the server at /var/run/postgresql port 5432 reads config_file ${CONFIG_DIR}/postgresql.conf, but with layout pgdata pgplay writes ${PKG}/postgresql.conf`,
          `bravo: the server at /var/run/postgresql port 5432 reads hba_file ${CONFIG_DIR}/pg_hba.conf, but with layout pgdata pgplay writes ${PKG}/pg_hba.conf`,
        ],
      },
      {
        what: 'layout pgdata on Debian servers: their config is not in PGDATA',
        postgres: '',
        pgdata: { alpha: PKG, bravo: PKG },
        says: ['alpha', 'bravo'].flatMap((n) => [
          `${n}: the server at /var/run/postgresql port 5432 reads config_file ${CONFIG_DIR}/postgresql.conf, but with layout pgdata pgplay writes ${PKG}/postgresql.conf`,
          `${n}: the server at /var/run/postgresql port 5432 reads hba_file ${CONFIG_DIR}/pg_hba.conf, but with layout pgdata pgplay writes ${PKG}/pg_hba.conf`,
        ]),
      },
    ];
    it.each(cases)('$what', async ({ postgres, pgdata, says }) => {
      const file = await writeInventory('contradicting.yml', postgres, pgdata);
      const r = await pgplay(['run', join(work, 'touch.yml'), '-i', file], join(work, 'state-refused'));
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(3);
      expect(r.stderr).toContain(`the inventory contradicts the running server${says.length > 1 ? 's' : ''}: ${says.join('; ')}`);
      for (const m of Object.values(rig.machines)) {
        expect((await m.exec(['test', '-e', '/var/lib/postgresql/touched'])).exitCode).toBe(1);
      }
    });

    it('the same machines described as they are: the step runs', async () => {
      const r = await pgplay(['run', join(work, 'touch.yml'), '-i', inventory], join(work, 'state-touch'));
      expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
      for (const m of Object.values(rig.machines)) {
        expect((await m.exec(['test', '-e', '/var/lib/postgresql/touched'])).exitCode).toBe(0);
      }
    });
  });

  it('teardown stops every process of the rig and removes its directory', async () => {
    const postmasters = await Promise.all(Object.values(rig.machines).map((m) => m.postmasterPid()));
    const pids = await rig.pids();
    for (const m of Object.values(rig.machines)) expect(pids).toContain(m.pid);
    for (const p of postmasters) expect(pids).toContain(p);
    await rig.stop();
    const left = pids.filter(alive);
    expect(left).toEqual([]);
    expect(existsSync(rig.dir)).toBe(false);
  });
});
