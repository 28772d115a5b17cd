import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshTransport } from '../../src/transports/ssh.js';
import { PgplayError } from '../../src/core/errors.js';
import { finished, runCli, spawnCli } from '../support/cli.js';
import { groupsGone, recordedGroups } from '../support/processes.js';
import { descendants, sshHost, startSshd, type Sshd } from '../support/sshd.js';
import { journals, results, waitForOutput } from './faults-support.js';

/**
 * The SSH connection dies mid-step: pgplay runs a playbook over a real sshd, and while the remote
 * command of the second step runs the test SIGKILLs the sshd process serving that connection. The run
 * must fail with exit 1 naming the step and host, journal it, leave no partial file, and --resume
 * (a new connection) must complete the run.
 */
let sshd: Sshd;
let dir: string;
let out: string;
let stateDir: string;
let inventory: string;
let playbook: string;

const base = (args: string[]) => [...args, '-i', inventory, '--state-dir', stateDir];

/** The connection process under which `sleep <seconds>` runs, once it runs. */
async function connectionRunning(command: string, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const conn of sshd.connectionPids()) {
      const running = descendants(conn).some((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === command;
        } catch {
          return false;
        }
      });
      if (running) return conn;
    }
    if (Date.now() > deadline) throw new Error(`no ssh connection runs "${command}"`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  sshd = await startSshd({ addresses: ['127.0.0.2'] });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-faults-ssh-'));
  out = join(dir, 'out');
  stateDir = join(dir, 'state');
  await mkdir(out);
  await mkdir(join(dir, 'templates'));
  await writeFile(join(dir, 'templates', 'app.conf.hbs'), 'name = {{host.name}}\n');
  inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    [
      'cluster: remote',
      'postgres: { version: 15 }',
      'connection:',
      '  transport: ssh',
      '  user: root',
      `  port: ${sshd.port}`,
      `  identityFile: ${sshd.identityFile}`,
      `  knownHosts: ${sshd.knownHosts}`,
      '  agent: false',
      'hosts:',
      `  db1: { address: 127.0.0.2, role: primary, pgdata: ${join(dir, 'pgdata')} }`,
      '',
    ].join('\n'),
  );
  playbook = join(dir, 'remote.yml');
  await writeFile(
    playbook,
    [
      'name: remote',
      'params:',
      '  nap: { type: integer, default: 1 }',
      'steps:',
      '  - id: first-conf',
      '    hosts: db1',
      `    template: { src: app.conf.hbs, dest: ${out}/first.conf, mode: "0640" }`,
      '  - id: remote-work',
      '    hosts: db1',
      // The remote command records its process group first, so the test can see it die (see processes.ts).
    `    command: { shell: "ps -o pgid= -p $$ >> ${dir}/remote-groups; sleep {{params.nap}} && touch ${out}/work-done" }`,
      '  - id: second-conf',
      '    hosts: db1',
      `    template: { src: app.conf.hbs, dest: ${out}/second.conf, mode: "0640" }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the SSH connection killed mid-step', () => {
  it('fails with exit 1 naming step and host, journals it, leaves no partial file', async () => {
    const child = spawnCli(base(['run', playbook, '-p', 'nap=41']));
    await waitForOutput(child, /STEP remote-work/);
    const conn = await connectionRunning('sleep 41');
    sshd.killConnection(conn);
    const r = finished(await child);

    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`\\nstep remote-work, host db1: connection to db1 \\(127\\.0\\.0\\.2:${sshd.port}\\) lost`));
    const [journal] = await journals(stateDir);
    expect(results(journal!.lines)).toEqual(['first-conf@db1=changed', 'remote-work@db1=failed']);
    const failed = journal!.lines.find((l) => l.type === 'step-result' && l.step === 'remote-work')!;
    expect(failed.error).toMatchObject({ code: 'TRANSPORT' });
    expect(journal!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'failed', exitCode: 1, error: { step: 'remote-work', host: 'db1' } });

    // The remote command died with its connection (one left running would sleep on for 41 s), so
    // nothing completes the step behind the run's back; and only whole files exist.
    await groupsGone(recordedGroups(join(dir, 'remote-groups')));
    expect(existsSync(join(out, 'work-done'))).toBe(false);
    expect(await readdir(out)).toEqual(['first.conf']);
    expect(await readFile(join(out, 'first.conf'), 'utf8')).toBe('name = db1\n');
  });

  it('--resume opens a new connection and completes the run', async () => {
    const r = await runCli(base(['run', playbook, '--resume', '-p', 'nap=1']));
    expect(r.exitCode).toBe(0);
    const all = await journals(stateDir);
    expect(results(all.at(-1)!.lines)).toEqual(['first-conf@db1=skipped', 'remote-work@db1=changed', 'second-conf@db1=changed']);
    expect((await readdir(out)).sort()).toEqual(['first.conf', 'second.conf', 'work-done']);
  });
});

describe('the SSH connection lost while a file is being written', () => {
  it('leaves the old file and no temporary file, never a truncated new one', async () => {
    const host = sshHost(sshd, 'db1', '127.0.0.2');
    const transport = new SshTransport({ ...host, connection: { ...host.connection, become: undefined } }, { resolveSecret: async () => undefined });
    const dest = join(dir, 'big.conf');
    await writeFile(dest, 'old = true\n');
    try {
      await transport.connect();
      const conn = sshd.connectionPids().at(-1)!;
      const pending = transport.writeFile(dest, Buffer.alloc(128 * 1024 * 1024, 'x')).then(
        () => undefined,
        (e: unknown) => e as PgplayError,
      );
      // Once data flows into the temp file, drop the connection the way a network does: the sshd
      // processes die, the remote shell and cat live on and see their stdin end early.
      const deadline = Date.now() + 20_000;
      while (!(await readdir(dir)).some((f) => f.startsWith('.big.conf.pgplay-tmp-'))) {
        if (Date.now() > deadline) throw new Error('the write never started');
        await new Promise((r) => setTimeout(r, 5));
      }
      const sshdOnly = [conn, ...descendants(conn)].filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sshd');
        } catch {
          return false;
        }
      });
      for (const p of sshdOnly) process.kill(p, 'SIGKILL');
      const err = await pending;
      expect(err).toBeInstanceOf(PgplayError);
      expect(err!.code).toBe('TRANSPORT');
      // The orphaned script finishes on its own: it must refuse the short data and clean up.
      const settle = Date.now() + 10_000;
      while ((await readdir(dir)).some((f) => f.includes('pgplay-tmp')) && Date.now() < settle) await new Promise((r) => setTimeout(r, 50));
      expect((await readdir(dir)).filter((f) => f.includes('big.conf'))).toEqual(['big.conf']);
      expect(await readFile(dest, 'utf8')).toBe('old = true\n');
    } finally {
      await transport.close();
    }
  });
});
