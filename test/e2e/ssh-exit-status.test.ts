/**
 * A quick command's exit status must never be lost. ssh2 emits a channel's 'exit' while it parses
 * incoming data, so when the exec reply and the exit status arrive in the same read, the status is
 * emitted before the code awaiting the exec reply can listen (fixed in bd36e34 by recording it in
 * the exec callback). Over loopback the replies usually arrive in separate reads, so a proxy in front
 * of the real sshd makes the bad case the common one: it holds what sshd sends for a few tens of
 * milliseconds after the first byte, then passes it on in one write, as a slow or busy network can.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshTransport } from '../../src/transports/ssh.js';
import { sshHost, startSshd, type Sshd } from '../support/sshd.js';

const ADDRESS = '127.0.0.2';
/** How long the proxy holds sshd's bytes: long enough for a quick command to exit meanwhile. */
const HOLD_MS = 40;
const ROUNDS = 40;

interface Proxy {
  port: number;
  close(): Promise<void>;
}

/** A TCP proxy to sshd that passes the client's bytes on at once and sshd's in batches. */
async function batchingProxy(target: { host: string; port: number }): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const proxy = { port: 0 } as Proxy;
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    let held: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      if (held.length === 0) return;
      client.write(Buffer.concat(held));
      held = [];
    };
    upstream.on('data', (chunk: Buffer) => {
      held.push(chunk);
      timer ??= setTimeout(flush, HOLD_MS);
    });
    upstream.on('end', () => {
      clearTimeout(timer);
      flush();
      client.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, ADDRESS, resolve);
  });
  proxy.port = (server.address() as { port: number }).port;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}

let sshd: Sshd;
let proxy: Proxy;
let dir: string;
let transport: SshTransport;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-exit-status-'));
  // Sessions get an empty HOME so the login shell reads no rc file and the commands really are
  // quick: a slow ~/.bashrc (this machine's runs `pyenv init`) delays every exit status far beyond the exec reply.
  const home = join(dir, 'home');
  await mkdir(home, { mode: 0o700 });
  sshd = await startSshd({ addresses: [ADDRESS], extraConfig: [`SetEnv HOME=${home}`] });
  proxy = await batchingProxy({ host: ADDRESS, port: sshd.port });
  // The proxy is the host as the client sees it: its own address:port must be known with sshd's key.
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, `[${ADDRESS}]:${proxy.port} ${sshd.hostPublicKey}\n`, { mode: 0o600 });
  const host = sshHost(sshd, 'db1', ADDRESS, { port: proxy.port, knownHosts, become: undefined });
  transport = new SshTransport(host, { resolveSecret: async () => undefined });
  await transport.connect();
});

afterAll(async () => {
  await transport?.close();
  await proxy?.close();
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the exit status of a quick command', () => {
  it(`is exact for ${ROUNDS} commands whose replies arrive together with the exec reply`, async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const [argv, expected] = i % 2 === 0 ? [['true'], 0] : [['sh', '-c', 'exit 3'], 3];
      const got = await transport.exec(argv as string[]).then(
        (r) => r.exitCode,
        (e: Error) => e.message,
      );
      outcomes.push(got === expected ? 'ok' : `${argv.join(' ')}: got ${got}`);
    }
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    expect(transport.connectionsOpened).toBe(1);
  });

  it('is exact when several quick commands run at once on the connection', async () => {
    const argvs = Array.from({ length: 10 }, (_, i) => ['sh', '-c', `exit ${i}`]);
    const codes = await Promise.all(argvs.map((argv) => transport.exec(argv).then((r) => r.exitCode)));
    expect(codes).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("of a stream whose command fails at once is reported as the stream's error", async () => {
    const argv = ['sh', '-c', 'echo refused >&2; exit 3'];
    for (let i = 0; i < 10; i++) {
      const stream = await transport.openStream(argv);
      const errors: string[] = [];
      stream.on('error', (e: Error) => errors.push(e.message));
      stream.resume();
      await new Promise((resolve) => stream.once('close', resolve));
      expect(errors).toEqual([`sh -c 'echo refused >&2; exit 3' on db1 (${ADDRESS}:${proxy.port}) exited with 3: refused`]);
    }
  });
});
