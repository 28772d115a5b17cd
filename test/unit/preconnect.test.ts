import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runPlaybook } from '../../src/app/run-playbook.js';
import type { Host } from '../../src/model/inventory.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { SshTransport } from '../../src/transports/ssh.js';
import { keygen, sshHost, type Sshd } from '../support/sshd.js';

/**
 * A run opens every involved host's connection as soon as its input is valid, beside the locks and the
 * journal, instead of one host (the locked one) first and the others only when facts are read. Pinned by
 * the order of calls, not by time: every involved host is asked to connect before the first command
 * (the lock on the primary) runs anywhere.
 */
describe('a run starts every involved host connection before its first command', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-preconnect-'));
    await writeFile(
      join(dir, 'inventory.yml'),
      [
        'cluster: main',
        'postgres: { version: 15 }',
        'connection: { transport: local }',
        'hosts:',
        '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }',
        '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db2, postgres: { port: 5433 } }',
        '  db3: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db3, postgres: { port: 5434 } }',
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'playbook.yml'), ['name: preconnect', 'steps:', '  - { id: one, hosts: all, command: { argv: [noop] } }', ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  class RecordingTransport extends FakeTransport {
    constructor(
      name: string,
      private readonly log: string[],
    ) {
      super(name, (argv) => {
        log.push(`exec@${name}: ${argv[0]}`);
        return { exitCode: 0, stdout: argv.join(' ').includes('ln --') ? 'acquired' : '' };
      });
    }
    preconnect(): void {
      this.log.push(`preconnect@${this.hostName}`);
    }
  }

  async function run(limit?: string[]): Promise<string[]> {
    const log: string[] = [];
    const r = await runPlaybook({
      playbookFile: join(dir, 'playbook.yml'),
      inventoryFile: join(dir, 'inventory.yml'),
      params: {},
      check: false,
      diff: false,
      limit,
      stateDir: join(dir, 'state'),
      lockHosts: true,
      onEvent: () => undefined,
      warn: () => undefined,
      createTransport: (host) => new RecordingTransport(host.name, log),
      gatherFacts: async (host) => {
        log.push(`facts@${host.name}`);
        return { reachable: true, pgdata_present: true, running: true, in_recovery: host.role !== 'primary' };
      },
    });
    expect(r.exitCode).toBe(0);
    return log;
  }

  it('every host is preconnected before the lock command on the primary and before any facts', async () => {
    const log = await run();
    const firstOther = log.findIndex((l) => !l.startsWith('preconnect@'));
    expect(log.slice(0, firstOther).sort()).toEqual(['preconnect@db1', 'preconnect@db2', 'preconnect@db3']);
    // The lock on the primary is the first command, and it really ran.
    expect(log[firstOther]).toBe('exec@db1: /bin/sh');
    expect(log.filter((l) => l.startsWith('preconnect@'))).toHaveLength(3);
  });

  it('a host --limit leaves out is not connected to at all', async () => {
    const log = await run(['db1', 'db2']);
    expect(log.filter((l) => l.startsWith('preconnect@')).sort()).toEqual(['preconnect@db1', 'preconnect@db2']);
    expect(log.some((l) => l.endsWith('@db3'))).toBe(false);
  });
});

/**
 * The SSH transport's pre-connect is the attempt the host's first connect() would have made, only
 * earlier: a server that accepts TCP and hangs up at once counts the attempts.
 */
describe('SshTransport.preconnect', () => {
  let server: Server;
  let accepted = 0;
  let dir: string;
  let host: Host;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-preconnect-ssh-'));
    keygen(join(dir, 'id_ed25519'), '');
    await writeFile(join(dir, 'known_hosts'), '');
    server = createServer((socket) => {
      accepted++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.destroy();
    });
    // A loopback address of this slice's own; port 0: the kernel picks one no other test can hold.
    await new Promise<void>((resolve) => server.listen(0, '127.0.62.1', resolve));
    const port = (server.address() as { port: number }).port;
    host = sshHost({ port, identityFile: join(dir, 'id_ed25519'), knownHosts: join(dir, 'known_hosts') } as Sshd, 'h1', '127.0.62.1', { become: undefined });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('its failure answers the callers that come together after it (facts and read-ahead), once; a later call tries again', async () => {
    accepted = 0;
    const t = new SshTransport(host, { resolveSecret: async () => undefined });
    t.preconnect();
    t.preconnect(); // a second call while the first is under way starts nothing
    const [a, b] = await Promise.allSettled([t.connect(), t.connect()]);
    expect(a.status).toBe('rejected');
    expect(b.status).toBe('rejected');
    expect((a as PromiseRejectedResult).reason).toBe((b as PromiseRejectedResult).reason);
    expect(String((a as PromiseRejectedResult).reason.message)).toMatch(/cannot connect to h1 \(127\.0\.62\.1:\d+\) as root/);
    expect(accepted).toBe(1);
    // Time has passed (a later step): the host is tried again, as it would be without the pre-connect.
    await new Promise((r) => setImmediate(r));
    await expect(t.connect()).rejects.toThrow(/cannot connect to h1/);
    expect(accepted).toBe(2);
    await t.close();
  });

  it('a pre-connect that failed before anyone asked still answers the first callers, not a second attempt', async () => {
    accepted = 0;
    const t = new SshTransport(host, { resolveSecret: async () => undefined });
    t.preconnect();
    // Wait until the attempt has failed, without claiming it (through the transport's own handle on it).
    await (t as unknown as { early: Promise<unknown> }).early.catch(() => undefined);
    await new Promise((r) => setImmediate(r));
    const [a, b] = await Promise.allSettled([t.connect(), t.connect()]);
    expect(a.status).toBe('rejected');
    expect(b.status).toBe('rejected');
    expect(accepted).toBe(1);
    await t.close();
  });
});

/**
 * At the start of a run, each host's facts command is sent before the read-ahead of the first steps is
 * worked out (rendering their inputs is CPU time that otherwise delays the facts of every host).
 */
describe('facts before the first read-ahead', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-facts-first-'));
    await writeFile(
      join(dir, 'inventory.yml'),
      ['cluster: main', 'postgres: { version: 15 }', 'hosts:', '  h1: { address: 127.0.0.1, role: primary, pgdata: /pg/h1 }', '  h2: { address: 127.0.0.1, role: repository }', ''].join('\n'),
    );
    const steps = Array.from({ length: 5 }, (_, i) => `  - { id: d${i}, hosts: all, file: { path: "/srv/{{host.name}}/d${i}", state: directory, mode: "0755" } }`);
    await writeFile(join(dir, 'playbook.yml'), ['name: facts-first', 'steps:', ...steps, ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('every host gets its facts command before its read-ahead command', async () => {
    const log: string[] = [];
    class SshLike extends FakeTransport {
      // The read-ahead is used over SSH only.
      override readonly kind = 'ssh' as never;
    }
    await runPlaybook({
      playbookFile: join(dir, 'playbook.yml'),
      inventoryFile: join(dir, 'inventory.yml'),
      params: {},
      check: true,
      diff: false,
      onEvent: () => undefined,
      warn: () => undefined,
      createTransport: (host) =>
        new SshLike(host.name, (argv) => {
          if (argv[3] === 'pgplay-read-ahead') log.push(`read-ahead@${host.name}`);
          else if (String(argv[2]).includes('pgplay_control')) log.push(`facts@${host.name}`);
          return { exitCode: 1 };
        }),
    });
    for (const h of ['h1', 'h2']) {
      expect(log.indexOf(`facts@${h}`), h).toBeGreaterThanOrEqual(0);
      expect(log.indexOf(`read-ahead@${h}`), h).toBeGreaterThan(log.indexOf(`facts@${h}`));
    }
  });
});

/**
 * SSH hosts whose key is checked strictly start their handshake as soon as the inventory is read
 * (app/early-connect.ts), while the playbook is loaded and validated: pinned by a playbook that fails
 * validation (exit 2), whose run has already asked those hosts to connect, and closes them again. A
 * host under accept-new (a first connection writes known_hosts) and a run with --limit are not
 * contacted before the run's input is valid.
 */
describe('SSH handshakes start once the inventory is read', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-early-connect-'));
    await writeFile(
      join(dir, 'inventory.yml'),
      [
        'cluster: main',
        'postgres: { version: 15 }',
        'connection: { transport: ssh, user: root, hostKeyChecking: strict }',
        'hosts:',
        '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }',
        '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db2, postgres: { port: 5433 } }',
        '  db3: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db3, postgres: { port: 5434 }, connection: { hostKeyChecking: accept-new } }',
        '',
      ].join('\n'),
    );
    await writeFile(join(dir, 'good.yml'), ['name: early', 'steps:', '  - { id: one, hosts: db1, command: { argv: [noop] } }', ''].join('\n'));
    await writeFile(join(dir, 'bad.yml'), ['name: early', 'steps:', '  - { id: one, hosts: db1, command: { argv: [noop], no_such_key: 1 } }', ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  class Recording extends FakeTransport {
    constructor(
      name: string,
      private readonly log: string[],
    ) {
      super(name, () => ({ exitCode: 0, stdout: 'acquired' }));
    }
    preconnect(): void {
      this.log.push(`preconnect@${this.hostName}`);
    }
    override async close(): Promise<void> {
      this.log.push(`close@${this.hostName}`);
      await super.close();
    }
  }

  const request = (playbook: string, log: string[], limit?: string[]) => ({
    playbookFile: join(dir, playbook),
    inventoryFile: join(dir, 'inventory.yml'),
    params: {},
    check: false,
    diff: false,
    limit,
    onEvent: () => undefined,
    warn: () => undefined,
    createTransport: (host: Host) => {
      log.push(`create@${host.name}`);
      return new Recording(host.name, log);
    },
    gatherFacts: async (host: Host) => ({ reachable: true, pgdata_present: true, running: true, in_recovery: host.role !== 'primary' }),
  });

  it('a playbook refused by validation (exit 2) has already started the strict hosts handshakes, and closes them', async () => {
    const log: string[] = [];
    const error = await runPlaybook(request('bad.yml', log)).catch((e) => e);
    expect(error.exitCode).toBe(2);
    expect(log.filter((l) => l.startsWith('preconnect@')).sort()).toEqual(['preconnect@db1', 'preconnect@db2']);
    expect(log.filter((l) => l.startsWith('close@')).sort()).toEqual(['close@db1', 'close@db2']);
    expect(log.some((l) => l.endsWith('@db3'))).toBe(false);
  });

  it('a run uses the transports whose handshakes started early: one per host, each closed once', async () => {
    const log: string[] = [];
    const r = await runPlaybook(request('good.yml', log));
    expect(r.exitCode).toBe(0);
    for (const h of ['db1', 'db2', 'db3']) {
      expect(log.filter((l) => l === `create@${h}`), h).toHaveLength(1);
      expect(log.filter((l) => l === `close@${h}`), h).toHaveLength(1);
    }
    // The strict hosts were asked before the playbook was read, the accept-new one only with the run's other hosts.
    expect(log.indexOf('preconnect@db3')).toBeGreaterThan(log.indexOf('preconnect@db1'));
  });

  it('a usage error found after the files are loaded (a bad --timeout) closes the early connections too', async () => {
    const log: string[] = [];
    const error = await runPlaybook({ ...request('good.yml', log), timeout: 'soon' }).catch((e) => e);
    expect(error.exitCode).toBe(2);
    expect(log.filter((l) => l.startsWith('close@')).sort()).toEqual(['close@db1', 'close@db2']);
  });

  it('local hosts are pre-connected (their command helpers started) once the inventory is read too, and closed on a refusal', async () => {
    await writeFile(
      join(dir, 'local.yml'),
      [
        'cluster: main',
        'postgres: { version: 15 }',
        'connection: { transport: local }',
        'hosts:',
        '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }',
        '  db2: { address: 127.0.0.1, role: standby, upstream: db1, pgdata: /pg/db2, postgres: { port: 5433 } }',
        '',
      ].join('\n'),
    );
    const log: string[] = [];
    const error = await runPlaybook({ ...request('bad.yml', log), inventoryFile: join(dir, 'local.yml') }).catch((e) => e);
    expect(error.exitCode).toBe(2);
    expect(log.filter((l) => l.startsWith('preconnect@')).sort()).toEqual(['preconnect@db1', 'preconnect@db2']);
    expect(log.filter((l) => l.startsWith('close@')).sort()).toEqual(['close@db1', 'close@db2']);
  });

  it('under --limit nobody is contacted before the input is valid', async () => {
    const log: string[] = [];
    const error = await runPlaybook(request('bad.yml', log, ['db1'])).catch((e) => e);
    expect(error.exitCode).toBe(2);
    expect(log).toEqual([]);
  });
});
