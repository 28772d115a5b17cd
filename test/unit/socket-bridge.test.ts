/**
 * The bridge a connection runs on its own where no command helper can take it (over SSH, or as the
 * connection's own user): one perl per connection, so what it loads is paid at every connection.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bridgeArgv } from '../../src/postgres/client.js';

const dir = mkdtempSync(join(tmpdir(), 'pgplay-socket-bridge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The module files perl loads for `args`, in order: every one passes this @INC hook first. */
function modulesLoaded(args: string[]): { modules: string[]; stdout: string; status: number | null } {
  const hook = 'BEGIN { unshift @INC, sub { print STDERR "loaded $_[1]\\n"; return; } }';
  const r = spawnSync('perl', ['-e', hook, ...args], { encoding: 'utf8' });
  const modules = r.stderr.split('\n').flatMap((line) => (line.startsWith('loaded ') ? [line.slice(7)] : []));
  return { modules, stdout: r.stdout, status: r.status };
}

describe('the socket bridge of a connection without a command helper', () => {
  it('says why it cannot connect, as Socket finds it (loaded then, with what it loads itself, and nothing else)', () => {
    const missing = join(dir, 'no-socket');
    const perlScript = bridgeArgv(missing)[4]!;
    const socketOnly = new Set(modulesLoaded(['-e', 'use strict; require Socket;']).modules);
    const bridge = modulesLoaded(['-e', perlScript, missing]);
    expect(bridge.stdout).toBe('ERR No such file or directory\n');
    expect(bridge.status).toBe(2);
    expect(new Set(bridge.modules)).toEqual(socketOnly);
  });

  it('a perl that cannot load Socket still says why the connect failed (the Linux connect\'s reason)', () => {
    const missing = join(dir, 'no-socket');
    // Socket.pm refused by an @INC hook, as a perl without it; no python3 source to hand over to.
    const noSocket = 'BEGIN { unshift @INC, sub { die "no Socket\\n" if $_[1] eq "Socket.pm"; return; } }';
    const r = spawnSync('perl', ['-e', noSocket, '-e', bridgeArgv(missing)[4]!, missing], { encoding: 'utf8' });
    expect(r.stdout).toBe('ERR No such file or directory\n');
    expect(r.status).toBe(2);
  });

  it('loads no module but strict to connect, copies bytes both ways, half-closes at the end of its input, and ends when the server closes', async () => {
    const path = join(dir, 'echo');
    const received: Buffer[] = [];
    const server: Server = createServer((socket) => {
      socket.on('data', (b: Buffer) => received.push(b));
      // The bridge's half-close is the end of the client's data: answer it, then close.
      socket.on('end', () => socket.end(`got ${Buffer.concat(received).length} bytes`));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const argv = bridgeArgv(path);
    // Every module file perl loads is named on stderr by a hook that PERL5OPT loads first.
    writeFileSync(join(dir, 'LoadTrace.pm'), 'package LoadTrace; unshift @INC, sub { print STDERR "loaded $_[1]\\n"; return; }; 1;\n');
    const env = { ...process.env, PERL5LIB: dir, PERL5OPT: '-MLoadTrace' };
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const payload = Buffer.alloc(300_000, 'x');
    child.stdin.end(payload);
    const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
    await new Promise((resolve) => server.close(resolve));
    expect(status).toBe(0);
    expect(Buffer.concat(out).toString()).toBe('OK\ngot 300000 bytes');
    expect(Buffer.concat(received).equals(payload)).toBe(true);
    expect(Buffer.concat(err).toString().split('\n').filter(Boolean)).toEqual(['loaded strict.pm']);
  });
});
