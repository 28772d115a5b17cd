/**
 * SSH failures through the real CLI against a real sshd: an unreachable host, a key the server
 * refuses, an unknown host key (and accept-new), a connection killed mid-step and Ctrl-C during a
 * remote command. Each one: the exit code, a message naming the host (and step, address, user or
 * fingerprint as it applies), the other hosts' results still reported, no session left behind.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type Sshd } from '../support/sshd.js';
import {
  FIXTURES,
  connectionsPerAddress,
  connectionsRunning,
  finished,
  jsonEvents,
  logCount,
  logSince,
  pgplay,
  processesRunning,
  sessionsLeft,
  spawnPgplay,
  writeInventory,
  type InventoryOptions,
} from './fixtures/ssh/support.js';

const NAP = join(FIXTURES, 'nap.yml');

let sshd: Sshd;
let dir: string;
let stateDir: string;
let counter = 0;

beforeAll(async () => {
  sshd = await startSshd({ addresses: ['127.0.0.2', '127.0.0.3'] });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-ssh-failures-'));
  stateDir = join(dir, 'state');
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A fresh output dir and an inventory of the given hosts, each with its own nap length. */
async function scenario(
  hosts: Record<string, { address: string; nap: string | number; connection?: Record<string, string | number> }>,
  connection: InventoryOptions['connection'] = {},
) {
  const n = ++counter;
  const out = join(dir, `out-${n}`);
  await mkdir(out);
  const entries = Object.entries(hosts);
  const inventory = await writeInventory(join(dir, `inventory-${n}.yml`), {
    cluster: `failures-${n}`,
    sshd,
    connection,
    hosts: Object.fromEntries(
      entries.map(([name, h], i) => [
        name,
        {
          address: h.address,
          connection: h.connection,
          extra: `${i === 0 ? `role: primary, pgdata: ${join(out, 'pgdata')}` : 'role: repository'}, vars: { nap: "${h.nap}" }`,
        },
      ]),
    ),
  });
  return { out, inventory, args: (...extra: string[]) => ['run', NAP, '-i', inventory, '-p', `out=${out}`, ...extra] };
}

/** A loopback port nothing listens on: the kernel hands it out, and it is closed again at once. */
function closedPort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('a host nothing listens for', () => {
  it('fails its steps naming host and address:port, and the other hosts still report', async () => {
    const port = await closedPort('127.0.0.4');
    const s = await scenario({
      db1: { address: '127.0.0.2', nap: 0 },
      db2: { address: '127.0.0.3', nap: 0 },
      db3: { address: '127.0.0.4', nap: 0, connection: { port } },
    });
    const r = await pgplay(s.args(), stateDir);
    expect(r.exitCode).toBe(1);
    const refused = `host is unreachable: cannot connect to db3 (127.0.0.4:${port}) as root: connection refused (nothing listens on that port)`;
    expect(r.stdout).toContain(`STEP before: a file before the nap\n`);
    expect(r.stdout).toMatch(/^ {2}changed +db1 .*$/m);
    expect(r.stdout).toMatch(/^ {2}changed +db2 .*$/m);
    expect(r.stdout).toContain(`  failed   db3 `);
    expect(r.stdout).toContain(`: ${refused}\n`);
    expect(r.stdout).toMatch(/^ {2}db1 +ok=0 changed=1 skipped=0 failed=0 unreachable=0$/m);
    expect(r.stdout).toMatch(/^ {2}db2 +ok=0 changed=1 skipped=0 failed=0 unreachable=0$/m);
    expect(r.stdout).toMatch(/^ {2}db3 +ok=0 changed=0 skipped=0 failed=1 unreachable=1$/m);
    expect(r.stdout).toContain(`\nstep before, host db3: ${refused}`);
    // The reachable hosts did the work of the failing step, and the run stopped after it.
    expect((await readdir(s.out)).sort()).toEqual(['.pgplay', 'db1-before.txt', 'db2-before.txt']);
    expect(await readdir(join(s.out, '.pgplay', 'locks'))).toEqual([]);
    expect(r.stdout).not.toContain('STEP nap');
    expect(await sessionsLeft(sshd)).toEqual([]);
  });
});

describe('a key the server does not accept', () => {
  it('exits 1 naming the host, the user and the key to check', async () => {
    const stranger = await sshd.generateKey('stranger', { authorize: false });
    const s = await scenario({ db1: { address: '127.0.0.2', nap: 0 } }, { identityFile: stranger.path });
    const r = await pgplay(s.args(), stateDir);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`\nstep before, host db1: host is unreachable: authentication failed for root@db1 (127.0.0.2:${sshd.port})`);
    expect(r.stdout).toContain('hint: check connection.user and connection.identityFile');
    expect(r.stdout).toMatch(/^ {2}db1 +ok=0 changed=0 skipped=0 failed=1 unreachable=1$/m);
    expect(await readdir(s.out)).toEqual([]);
  });
});

describe('host keys', () => {
  it('an unknown host key exits 1 with its fingerprint and how to trust it', async () => {
    const knownHosts = join(dir, 'known_hosts-empty');
    await writeFile(knownHosts, '');
    const s = await scenario({ db1: { address: '127.0.0.2', nap: 0 } }, { knownHosts });
    const r = await pgplay(s.args(), stateDir);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      `host db1: host is unreachable: the host key of db1 (127.0.0.2:${sshd.port}) is not known: ` +
        `the server offered ssh-ed25519 ${sshd.hostKeyFingerprint}, which is not in ${knownHosts}`,
    );
    // How to trust it: the exact line for the file, or accept-new.
    expect(r.stdout).toContain(`by adding this line to ${knownHosts}:\n    [127.0.0.2]:${sshd.port} ${sshd.hostPublicKey}\n`);
    expect(r.stdout).toContain('connection.hostKeyChecking: accept-new');
    expect(await readFile(knownHosts, 'utf8')).toBe('');
    expect(await readdir(s.out)).toEqual([]);
  });

  it('accept-new adds the key, says so, and the next strict run trusts it', async () => {
    const knownHosts = join(dir, 'known_hosts-new');
    const s = await scenario({ db1: { address: '127.0.0.2', nap: 0 } }, { knownHosts, hostKeyChecking: 'accept-new' });
    const r = await pgplay(s.args('--output', 'json'), stateDir);
    expect(r.exitCode).toBe(0);
    const line = `[127.0.0.2]:${sshd.port} ${sshd.hostPublicKey}`;
    expect(await readFile(knownHosts, 'utf8')).toBe(`${line}\n`);
    expect(jsonEvents(r.stdout).filter((e) => e.type === 'log').map((e) => `${e.host}: ${e.line}`)).toEqual([
      `db1: added host key to known_hosts: ${line}`,
    ]);
    // And for the human, whatever the output format.
    expect(r.stderr).toBe(`pgplay: db1: added host key to known_hosts: ${line}`);

    const strict = await scenario({ db1: { address: '127.0.0.2', nap: 0 } }, { knownHosts, hostKeyChecking: 'strict' });
    const again = await pgplay(strict.args(), stateDir);
    expect(again.exitCode).toBe(0);
    expect(again.stderr).toBe('');
    expect(await readFile(knownHosts, 'utf8')).toBe(`${line}\n`);
  });
});

describe('a connection lost mid-step', () => {
  it('exits 1 naming the step, the host and the lost connection; the other host finishes the step', async () => {
    const s = await scenario({ db1: { address: '127.0.0.2', nap: 5 }, db2: { address: '127.0.0.3', nap: 3 } });
    const mark = sshd.logs().length;
    const child = spawnPgplay(s.args(), stateDir);
    const [conn] = await connectionsRunning(sshd, 'sleep 5');
    sshd.killConnection(conn!);
    const r = finished(await child);

    expect(r.exitCode).toBe(1);
    const lost = `connection to db1 (127.0.0.2:${sshd.port}) lost while running: sleep 5`;
    expect(r.stdout).toMatch(new RegExp(`^ {2}failed +db1 \\(.*\\): ${escape(lost)}`, 'm'));
    expect(r.stdout).toMatch(/^ {2}changed +db2 \(.*\): rc 0$/m);
    expect(r.stdout).toContain(`\nstep nap, host db1: ${lost}`);
    expect(r.stdout).toContain('hint: the command may or may not have completed on the host');
    expect(r.stdout).toMatch(/^ {2}db1 +ok=0 changed=1 skipped=0 failed=1 unreachable=1$/m);
    expect(r.stdout).toMatch(/^ {2}db2 +ok=0 changed=2 skipped=0 failed=0 unreachable=0$/m);
    expect((await readdir(s.out)).sort()).toEqual(['.pgplay', 'db1-before.txt', 'db2-before.txt']);
    expect(await readdir(join(s.out, '.pgplay', 'locks'))).toEqual([]);
    // The run never reconnected to run a step, and closed what was left. The one connection it may open
    // again is to db1 (the primary) to release the cluster lock held there, when the run's own connection is
    // already gone by then (the lock file is gone: checked above).
    const connections = connectionsPerAddress(logSince(sshd, mark), sshd.port);
    expect(connections['127.0.0.3']).toBe(1);
    expect([1, 2]).toContain(connections['127.0.0.2']);
    expect(await sessionsLeft(sshd)).toEqual([]);
  });
});

describe('Ctrl-C during a remote command', () => {
  it('stops the remote commands, closes every connection and exits 130', async () => {
    // A nap no other test uses, so the process table can be searched for it.
    const nap = '31.7';
    const s = await scenario({ db1: { address: '127.0.0.2', nap }, db2: { address: '127.0.0.3', nap } });
    const mark = sshd.logs().length;
    const child = spawnPgplay(s.args('--grace', '1s'), stateDir);
    await connectionsRunning(sshd, `sleep ${nap}`, 2);
    process.kill(child.pid!, 'SIGINT');
    const r = finished(await child);

    expect(r.exitCode).toBe(130);
    // The naps did not run to their end: each host's step failed as interrupted (a finished nap is "changed").
    expect(r.stderr).toContain('interrupted: finishing running steps');
    for (const host of ['db1', 'db2']) {
      expect(r.stdout).toMatch(new RegExp(`^ {2}failed +${host} \\(.*\\): interrupted while running on ${host} \\(127\\.0\\.0\\.\\d:${sshd.port}\\): sleep ${nap.replace('.', '\\.')}$`, 'm'));
    }
    expect(r.stdout).toMatch(/^run \S+ interrupted \(exit 130\)/m);
    expect(r.stdout).not.toContain('STEP after');
    expect(await sessionsLeft(sshd)).toEqual([]);
    expect(processesRunning(`sleep ${nap}`)).toEqual([]);
    // Closed by pgplay: each connection ended with a disconnect message sshd received.
    expect(connectionsPerAddress(logSince(sshd, mark), sshd.port)).toEqual({ '127.0.0.2': 1, '127.0.0.3': 1 });
    expect(await logCount(sshd, mark, /Received disconnect from/, 2)).toBe(2);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
