/**
 * Commands as another user go through one long-lived helper per user (exec-server.ts), not one
 * `runuser` each (issue 14: a PAM session and a fork of node per command, 20-30 ms, about fifty per
 * standby build). Counted here: the processes that commands run under (their parent), on the real
 * local transport as root with become postgres. What a command sees must be what runuser gave it.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ExecServers, spawnedHelper } from '../../src/transports/exec-server.js';
import { LocalTransport } from '../../src/transports/local.js';
import { bridgeArgv } from '../../src/postgres/client.js';
import { localHost } from './support/action-context.js';

const asRoot = process.getuid?.() === 0;
const transport = new LocalTransport(localHost());
afterAll(() => transport.close());

/** What a command run as postgres sees of its identity and environment (its parent left out). */
const IDENTITY = 'id; echo "$HOME $USER $LOGNAME $SHELL"; ulimit -n; ulimit -u; umask; pwd; cat /proc/self/loginuid';

describe.runIf(asRoot)('commands as another user: one helper, not one runuser per command', () => {
  it('five commands one after another run under one parent process; under runuser each had its own', async () => {
    const parents = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await transport.exec(['sh', '-c', 'echo $PPID'], { become: 'postgres' });
      expect(r.exitCode).toBe(0);
      parents.add(r.stdout);
    }
    expect(parents.size).toBe(1);
    const [helper] = [...parents];
    expect(existsSync(`/proc/${helper}`)).toBe(true);
  });

  it('a command sees the user, groups, environment, limits, umask and directory runuser gives it', async () => {
    const direct = spawnSync('runuser', ['-u', 'postgres', '--', 'sh', '-c', IDENTITY], { cwd: '/', encoding: 'utf8' });
    const served = await transport.exec(['sh', '-c', IDENTITY], { become: 'postgres' });
    expect(served.stdout).toBe(direct.stdout.trimEnd());
    expect(served.stdout).toContain('uid=101(postgres)');
  });

  it('output, exit status, input, variables, a program that is missing, the working directory, and commands at the same time', async () => {
    expect((await transport.exec(['pwd'], { become: 'postgres', cwd: '/' })).stdout).toBe('/');
    expect((await transport.exec(['pwd'], { become: 'postgres', cwd: '/tmp' })).stdout).toBe('/tmp');
    const r = await transport.exec(['sh', '-c', 'printf "a\\0b"; echo oops >&2; echo "$GREETING"; exit 7'], { become: 'postgres', env: { GREETING: 'hi' } });
    expect([r.exitCode, r.stdout, r.stderr]).toEqual([7, 'a\0bhi', 'oops']);
    const big = 'x'.repeat(300_000);
    const cat = await transport.exec(['sh', '-c', 'cat; echo; head -c 200000 /dev/zero | tr "\\0" y'], { become: 'postgres', stdin: big });
    expect(cat.stdout).toBe(`${big}\n${'y'.repeat(200_000)}`);
    const missing = await transport.exec(['/nonexistent/tool'], { become: 'postgres' });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/failed to execute \/nonexistent\/tool: No such file or directory/);
    const many = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => transport.exec(['sh', '-c', `echo ${i}; id -un`], { become: 'postgres' })));
    expect(many.map((m) => m.stdout)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${i}\npostgres`));
  });

  it('a timeout or an abort stops the command and everything it started', async () => {
    const r = await transport.exec(['sh', '-c', 'sleep 60 & echo $!; wait'], { become: 'postgres', timeoutMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBe(143);
    const controller = new AbortController();
    const aborted = transport.exec(['sh', '-c', 'sleep 60 & echo $! > /tmp/pgplay-exec-server-abort.pid; wait'], { become: 'postgres', signal: controller.signal });
    await waitFor(() => existsSync('/tmp/pgplay-exec-server-abort.pid'));
    controller.abort();
    expect((await aborted).exitCode).not.toBe(0);
    const child = spawnSync('cat', ['/tmp/pgplay-exec-server-abort.pid'], { encoding: 'utf8' }).stdout.trim();
    spawnSync('rm', ['-f', '/tmp/pgplay-exec-server-abort.pid']);
    await waitFor(() => !existsSync(`/proc/${child}`) || /State:\s+Z/.test(spawnSync('cat', [`/proc/${child}/status`], { encoding: 'utf8' }).stdout));
  });

  it('preconnect() starts the helper of the PGDATA owner before any command, and the first command runs in it', async () => {
    const own = new LocalTransport(localHost());
    const children = runuserChildren;
    const before = new Set(children());
    own.preconnect?.();
    await waitFor(() => children().some((p) => !before.has(p)));
    const [runuser] = children().filter((p) => !before.has(p));
    const helper = (await own.exec(['sh', '-c', 'echo $PPID'], { become: 'postgres' })).stdout;
    // The command's parent (the perl helper) is the child of the runuser started by preconnect().
    expect(readFileSync(`/proc/${helper}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]).toBe(runuser);
    expect(children().filter((p) => !before.has(p))).toEqual([runuser]);
    await own.close();
  });

  it('close() ends the helpers: no process of the transport is left', async () => {
    const own = new LocalTransport(localHost());
    const helper = (await own.exec(['sh', '-c', 'echo $PPID'], { become: 'postgres' })).stdout;
    expect(existsSync(`/proc/${helper}`)).toBe(true);
    await own.close();
    await waitFor(() => !existsSync(`/proc/${helper}`));
  });
});

describe.runIf(asRoot)("the local transports of one run share their helpers", () => {
  it("one helper per host, all but the first forked from it; one runs another host's commands when that host's is busy, and the last close ends them", async () => {
    const before = new Set(runuserChildren());
    const started = () => runuserChildren().filter((p) => !before.has(p));
    const scope = {};
    const a = new LocalTransport(localHost(), { helperScope: scope });
    const b = new LocalTransport(localHost({ name: 'local2' }), { helperScope: scope });
    const c = new LocalTransport(localHost({ name: 'local3' }), { helperScope: scope });
    // One helper for each host, their facts are read at once: one runuser, the other two forked from its perl.
    a.preconnect();
    b.preconnect();
    c.preconnect();
    await waitFor(() => started().length === 1);
    const [session] = started();
    // Three commands of a's at once: each in a helper of its own, and still one runuser.
    const three = await Promise.all([0, 1, 2].map(() => a.exec(['sh', '-c', 'sleep 0.2; echo $PPID; id -un'], { become: 'postgres' })));
    const helpers = three.map((r) => r.stdout.split('\n')[0]!);
    expect(new Set(helpers).size).toBe(3);
    expect(three.map((r) => r.stdout.split('\n')[1])).toEqual(['postgres', 'postgres', 'postgres']);
    expect(started()).toEqual([session]);
    // The first is runuser's child; each other one the child of a waiter that is the first one's child.
    const parentOf = (pid: string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
    const first = helpers.find((h) => parentOf(h) === session)!;
    expect(first).toBeDefined();
    for (const forked of helpers.filter((h) => h !== first)) expect(parentOf(parentOf(forked))).toBe(first);
    // a's and b's close leave the helpers to c; c's close ends them, the waiters too.
    const waiters = helpers.filter((h) => h !== first).map(parentOf);
    await a.close();
    await b.close();
    expect(helpers).toContain((await c.exec(['sh', '-c', 'echo $PPID'], { become: 'postgres' })).stdout);
    await c.close();
    await waitFor(() => [...helpers, ...waiters].every((h) => !existsSync(`/proc/${h}`)) && started().length === 0);
  });
});

describe.runIf(asRoot)('a helper forked from another (fork_helper)', () => {
  const asPostgres = (launches: { n: number }) =>
    new ExecServers((user, helper) => (launches.n++, spawnedHelper(['runuser', '-u', user, '--', ...helper], 2)), 8, true);
  const run = async (servers: ExecServers, argv: string[]) => (await (await servers.run('postgres', argv, {}, undefined))!.done);

  it('a command in it sees what runuser gives, and holds no descriptor of the helpers: only those of one started directly', async () => {
    const launches = { n: 0 };
    const servers = asPostgres(launches);
    servers.prestart('postgres');
    servers.prestart('postgres');
    const list = ['sh', '-c', `${IDENTITY}; sleep 0.2; ls /proc/$$/fd`];
    const [one, two] = await Promise.all([run(servers, list), run(servers, list)]);
    expect(launches.n).toBe(1);
    const direct = spawnSync('runuser', ['-u', 'postgres', '--', ...list], { cwd: '/', encoding: 'utf8' }).stdout;
    for (const r of [one!, two!]) expect(r.stdout.toString().split('\n').filter(Boolean).sort()).toEqual(direct.split('\n').filter(Boolean).sort());
    await servers.close();
  });

  it('a command that waits for a forked helper keeps the process running (a process of its own, whose event loop nothing else holds)', () => {
    // The built module, in a node of its own: vitest's own handles would keep this process running anyway.
    const module = pathToFileURL(join(process.cwd(), 'dist', 'transports', 'exec-server.js')).href;
    const script = [
      `import { ExecServers, spawnedHelper } from ${JSON.stringify(module)};`,
      "const servers = new ExecServers((user, helper) => spawnedHelper(['runuser', '-u', user, '--', ...helper], 2), 8, true);",
      "servers.prestart('postgres');",
      "servers.prestart('postgres');",
      "const r = await (await servers.run('postgres', ['id', '-un'], {}, undefined)).done;",
      "console.log('ran as ' + r.stdout.toString().trim());",
      'await servers.close();',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    // Node's 13: a top-level await left unsettled when the event loop emptied.
    expect([r.status, r.stdout.trim()]).toEqual([0, 'ran as postgres']);
  });

  it('the first one killed outright while a helper forked from it runs: it is gone at once, and the next command goes to the forked one', async () => {
    const launches = { n: 0 };
    const servers = asPostgres(launches);
    servers.prestart('postgres');
    servers.prestart('postgres');
    const both = await Promise.all([0, 1].map(() => run(servers, ['sh', '-c', 'sleep 0.2; echo $PPID'])));
    const helpers = both.map((r) => r!.stdout.toString().trim());
    const parentOf = (pid: string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
    const first = helpers.find((h) => readFileSync(`/proc/${parentOf(h)}/cmdline`, 'utf8').startsWith('runuser'))!;
    const forked = helpers.find((h) => h !== first)!;
    const session = parentOf(first);
    process.kill(Number(first), 'SIGKILL');
    // Its runuser exits with it; the forked helper still holds its pair of the first one's descriptors.
    await waitFor(() => !existsSync(`/proc/${session}`));
    const within5s = <T>(p: Promise<T>) => Promise.race([p, new Promise<string>((resolve) => setTimeout(() => resolve('no answer in 5 s'), 5000))]);
    // The next commands settle: none is handed to the dead helper for ever; they run in the forked one.
    const answers: unknown[] = [];
    for (let i = 0; i < 2; i++) answers.push(await within5s(run(servers, ['sh', '-c', 'echo $PPID']).then((r) => r!.stdout.toString().trim())));
    expect(answers).toEqual([forked, forked]);
    expect(launches.n).toBe(1);
    await servers.close();
  });

  it('one killed outright (SIGKILL) fails its command as a helper that exited, and the next command gets another', async () => {
    const launches = { n: 0 };
    const servers = asPostgres(launches);
    servers.prestart('postgres');
    servers.prestart('postgres');
    const slow = ['sh', '-c', 'echo $PPID; exec sleep 30'];
    const first = (await servers.run('postgres', slow, {}, undefined))!;
    const second = (await servers.run('postgres', slow, {}, undefined))!;
    const pids = await Promise.all([first.pid, second.pid]);
    expect(launches.n).toBe(1);
    // The forked helper is the one whose parent (its waiter) is not runuser.
    const parentOf = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
    const helpers = pids.map((p) => parentOf(p!));
    const forked = helpers.findIndex((h) => !readFileSync(`/proc/${parentOf(h)}/cmdline`, 'utf8').startsWith('runuser'));
    expect(forked).toBeGreaterThanOrEqual(0);
    process.kill(Number(helpers[forked]), 'SIGKILL');
    const outcome = await [first, second][forked]!.done;
    expect(outcome.startError?.message).toBe('the command helper exited');
    // Its command goes on in its own group: stopped here by its pid (unless it has ended already: a helper
    // killed before the command's echo leaves it a broken pipe, and SIGPIPE ends it).
    try {
      process.kill(-pids[forked]!, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
    [first, second][1 - forked]!.abandon();
    expect((await run(servers, ['id', '-un']))!.stdout.toString()).toBe('postgres\n');
    await servers.close();
  });

  it('a connection through it forks its bridge on its own spare channel, and its helper serves the next command', async () => {
    const socket = await socketServer((conn) => conn.end('hello'));
    const launches = { n: 0 };
    const servers = asPostgres(launches);
    servers.prestart('postgres');
    servers.prestart('postgres');
    const both = async () => (await Promise.all([0, 1].map(() => run(servers, ['sh', '-c', 'sleep 0.2; echo $PPID'])))).map((r) => r!.stdout.toString()).sort();
    const helpers = await both();
    expect(new Set(helpers).size).toBe(2);
    const streams = [(await servers.openSocket('postgres', socket.path))!, (await servers.openSocket('postgres', socket.path))!];
    for (const stream of streams) {
      const chunks: Buffer[] = [];
      stream.stdout.on('data', (c: Buffer) => chunks.push(c));
      await new Promise((resolve) => stream.stdout.once('end', resolve));
      expect(Buffer.concat(chunks).toString()).toBe('OK\nhello');
    }
    // Neither helper became a bridge: both serve commands again, and nothing else was started.
    expect(await both()).toEqual(helpers);
    expect(launches.n).toBe(1);
    await servers.close();
    socket.stop();
  });
});

describe('a helper that cannot start', () => {
  it('no perl (or a helper that does not answer as one): the command is handed back, to run directly, and the helper is not tried again', async () => {
    let starts = 0;
    const missing = new ExecServers((_user, helper) => (starts++, spawnedHelper(['/nonexistent/perl-less', ...helper.slice(1)])));
    expect(await missing.run('postgres', ['true'], {}, undefined)).toBeUndefined();
    expect(await missing.run('postgres', ['true'], {}, undefined)).toBeUndefined();
    expect(starts).toBe(1);
    const mute = new ExecServers(() => spawnedHelper(['sh', '-c', 'echo something else']));
    expect(await mute.run('postgres', ['true'], {}, undefined)).toBeUndefined();
    await Promise.all([missing.close(), mute.close()]);
  });
});

describe('a helper that cannot start now, and helpers that are asked to end', () => {
  const me = userInfo().username;

  it('no slot for it now (the launch gives none): the command is handed back and the next one tries again', async () => {
    let launches = 0;
    const servers = new ExecServers((_user, helper) => (++launches === 1 ? undefined : spawnedHelper(helper)));
    expect(await servers.run(me, ['true'], {}, undefined)).toBeUndefined();
    const next = await servers.run(me, ['echo', 'now'], {}, undefined);
    expect((await next!.done).stdout.toString()).toBe('now\n');
    expect(launches).toBe(2);
    await servers.close();
  });

  it('stopIdle ends the helpers that wait for a command, not one running a command', async () => {
    let launches = 0;
    const servers = new ExecServers((_user, helper) => (launches++, spawnedHelper(helper)));
    const busy = (await servers.run(me, ['sh', '-c', 'echo $PPID; sleep 0.5'], {}, undefined))!;
    // The first helper is busy: this command starts a second, which waits for a command once it is done.
    const idle = Number((await (await servers.run(me, ['sh', '-c', 'echo $PPID'], {}, undefined))!.done).stdout.toString().trim());
    expect(launches).toBe(2);
    servers.stopIdle();
    await waitFor(() => !existsSync(`/proc/${idle}`));
    const busyParent = Number((await busy.done).stdout.toString().trim());
    expect(busyParent).not.toBe(idle);
    expect(existsSync(`/proc/${busyParent}`)).toBe(true);
    // The next command runs in the helper that was left.
    expect(Number((await (await servers.run(me, ['sh', '-c', 'echo $PPID'], {}, undefined))!.done).stdout.toString().trim())).toBe(busyParent);
    expect(launches).toBe(2);
    await servers.close();
  });

  it('abandon ends the helper running a command: the command settles as a helper that exited', async () => {
    const servers = new ExecServers((_user, helper) => spawnedHelper(helper));
    const command = (await servers.run(me, ['sleep', '30'], {}, undefined))!;
    const pid = await command.pid;
    command.abandon();
    const outcome = await command.done;
    expect(outcome.startError?.code).toBe('EPIPE');
    // The command has a process group of its own (setsid), which the transport stops by pid; a command
    // that had not reached setsid yet went with the helper's group.
    if (pid !== undefined && existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    await servers.close();
  });
});

describe('what a helper costs to start', () => {
  it('loads no Perl module but strict, to start, run a command with input, and end: each would be paid at every start', async () => {
    let helper: string[] | undefined;
    const servers = new ExecServers((_user, argv) => ((helper = argv), undefined));
    expect(await servers.run(userInfo().username, ['true'], {}, undefined)).toBeUndefined();
    expect(helper?.slice(0, 2)).toEqual(['perl', '-e']);
    // Every module file perl loads passes this hook first (it loads nothing itself: it returns nothing).
    const hook = 'BEGIN { unshift @INC, sub { print STDERR "loaded $_[1]\\n"; return; } }';
    const item = (text: string) => `${Buffer.byteLength(text)}\n${text}`;
    const input = 'hello';
    const request = `X 3 1 ${input.length}\n${item('sh')}${item('-c')}${item('read x; echo "$GREETING $x"')}${item('GREETING=hi')}${input}`;
    const r = spawnSync('perl', ['-e', hook, '-e', helper![2]!], { input: request, encoding: 'utf8', cwd: '/' });
    expect(r.stdout).toMatch(/^pgplay-exec 1\nP \d+\nD 0 0 9 0\nhi hello\n$/);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual(['loaded strict.pm']);
    expect(r.status).toBe(0);
  });
});

describe('a connection through a helper', () => {
  async function received(stream: { stdout: NodeJS.ReadableStream }): Promise<string> {
    const chunks: Buffer[] = [];
    stream.stdout.on('data', (b: Buffer) => chunks.push(b));
    await new Promise((resolve) => stream.stdout.once('end', resolve));
    return Buffer.concat(chunks).toString();
  }

  it("a child of the helper bridges on the helper's spare channel, and the helper serves the next command: no helper is used up", async () => {
    const socket = await socketServer((c) => c.end('hello'));
    let starts = 0;
    const servers = new ExecServers((_user, helper) => (starts++, spawnedHelper(helper)));
    const me = userInfo().username;
    const helper = (await (await servers.run(me, ['sh', '-c', 'echo $PPID'], {}, undefined))!.done).stdout.toString().trim();
    const stream = (await servers.openSocket(me, socket.path))!;
    expect(await received(stream)).toBe('OK\nhello');
    expect((await (await servers.run(me, ['sh', '-c', 'echo $PPID'], {}, undefined))!.done).stdout.toString().trim()).toBe(helper);
    expect(starts).toBe(1);
    // Its spare channel is used: the next connection takes the helper itself (below), and a replacement starts.
    const second = (await servers.openSocket(me, socket.path))!;
    expect(await received(second)).toBe('OK\nhello');
    await servers.close();
    expect(starts).toBe(2);
    socket.stop();
  });

  it('a command does not inherit the spare channel: it has the descriptors of one started directly', async () => {
    const servers = new ExecServers((_user, helper) => spawnedHelper(helper));
    const list = ['sh', '-c', 'ls /proc/$$/fd'];
    const served = (await (await servers.run(userInfo().username, list, {}, undefined))!.done).stdout.toString();
    const direct = spawnSync(list[0]!, list.slice(1), { encoding: 'utf8' }).stdout;
    expect(served.split('\n').filter(Boolean).sort()).toEqual(direct.split('\n').filter(Boolean).sort());
    expect(served.split('\n')).not.toContain('3');
    await servers.close();
  });

  it('without a spare channel (over SSH) the helper becomes the bridge: the request goes out before the fork of its replacement, which serves the next command', async () => {
    const socket = await socketServer((c) => c.end('hello'));
    let starts = 0;
    const servers = new ExecServers((_user, helper) => (starts++, { ...spawnedHelper(helper), spare: undefined }));
    const me = userInfo().username;
    expect((await (await servers.run(me, ['true'], {}, undefined))!.done).exitCode).toBe(0);
    expect(starts).toBe(1);
    const stream = (await servers.openSocket(me, socket.path))!;
    // The request went out with no fork in front of it: the replacement has not started yet.
    expect(starts).toBe(1);
    expect(await received(stream)).toBe('OK\nhello');
    expect(starts).toBe(2);
    expect((await (await servers.run(me, ['echo', 'next'], {}, undefined))!.done).stdout.toString()).toBe('next\n');
    expect(starts).toBe(2);
    stream.stop();
    await servers.close();
    socket.stop();
  });

  it('close() ends a bridge whose server keeps the connection open: the bridge half-closes and exits when the server closes', async () => {
    let serverSawEnd = false;
    const socket = await socketServer((c) => {
      c.on('end', () => (serverSawEnd = true));
      keepsOpen(c);
    });
    const servers = new ExecServers((_user, helper) => spawnedHelper(helper));
    const stream = (await servers.openSocket(userInfo().username, socket.path))!;
    const text = received(stream);
    await servers.close();
    expect(await text).toBe('OK\n');
    expect(serverSawEnd).toBe(true);
    socket.stop();
  });
});

describe.runIf(asRoot)('a bridge forked from a helper started through runuser (which holds the spare channel too)', () => {
  const asPostgres = () => new ExecServers((user, helper) => spawnedHelper(['runuser', '-u', user, '--', ...helper]));
  /** The bridge: the process of the helper's session whose input and output are one socket (the spare channel). */
  function bridgeIn(session: string): string | undefined {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p) && p !== session)
      .find((p) => {
        try {
          const input = readlinkSync(`/proc/${p}/fd/0`);
          return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[3] === session && input.startsWith('socket:') && readlinkSync(`/proc/${p}/fd/1`) === input;
        } catch {
          return false;
        }
      });
  }

  it('a bridge killed outright (SIGKILL, the OOM killer) ends its stream at once', async () => {
    const socket = await socketServer(keepsOpen);
    const before = new Set(runuserChildren());
    const servers = asPostgres();
    const stream = (await servers.openSocket('postgres', socket.path))!;
    const session = runuserChildren().find((p) => !before.has(p))!;
    await waitFor(() => bridgeIn(session) !== undefined);
    const ended = new Promise((resolve) => stream.stdout.once('end', resolve).resume());
    process.kill(Number(bridgeIn(session)), 'SIGKILL');
    expect(await Promise.race([ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still open'), 3000))])).toBe('ended');
    stream.stop();
    await servers.close();
    socket.stop();
  });

  it('a connection whose bridge starts while close() runs gets none, and none is left running', async () => {
    const socket = await socketServer(keepsOpen);
    const before = new Set(runuserChildren());
    // The helper's answers are held back on request, so that close() comes while the bridge's is on its way.
    let hold = false;
    const held: Buffer[] = [];
    const answers = new PassThrough();
    const servers = new ExecServers((user, helper) => {
      const link = spawnedHelper(['runuser', '-u', user, '--', ...helper]);
      link.stdout.on('data', (b: Buffer) => (hold ? held.push(b) : answers.write(b)));
      link.stdout.on('end', () => answers.end());
      return { ...link, stdout: answers };
    });
    expect((await (await servers.run('postgres', ['true'], {}, undefined))!.done).exitCode).toBe(0);
    const session = runuserChildren().find((p) => !before.has(p))!;
    hold = true;
    const opening = servers.openSocket('postgres', socket.path);
    await waitFor(() => held.length > 0 && bridgeIn(session) !== undefined);
    const closing = servers.close();
    hold = false;
    for (const b of held.splice(0)) answers.write(b);
    const stream = await opening;
    await closing;
    stream?.stdin.end();
    expect(stream).toBeUndefined();
    await waitFor(() => bridgeIn(session) === undefined);
    socket.stop();
  });
});

describe("a transport's close with a connection's bridge started as a process of its own (openStream)", () => {
  it('passes on what was written to the bridge just before (a Terminate) and ends it: the server receives it, then the end', async () => {
    const received: string[] = [];
    const socket = await socketServer((conn) => {
      const chunks: Buffer[] = [];
      conn.on('data', (c: Buffer) => chunks.push(c));
      conn.on('end', () => {
        received.push(Buffer.concat(chunks).toString('latin1'));
        conn.end();
      });
    });
    // Ten times: a signal sent at once lost the bytes about half of the time.
    for (let i = 0; i < 10; i++) {
      const own = new LocalTransport(localHost());
      const stream = await own.openStream(bridgeArgv(socket.path));
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.write('X\0\0\0\u0004');
      await own.close();
    }
    await waitFor(() => received.length === 10);
    expect(received).toEqual(Array.from({ length: 10 }, () => 'X\0\0\0\u0004'));
    socket.stop();
  });
});

describe('a bridge to a socket that is not there', () => {
  it('says why, as the client reports it ("ERR" and the system\'s reason), and ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgplay-bridge-'));
    const servers = new ExecServers((_user, helper) => spawnedHelper(helper));
    const stream = (await servers.openSocket(userInfo().username, join(dir, 'no-socket')))!;
    const received: Buffer[] = [];
    stream.stdout.on('data', (b: Buffer) => received.push(b));
    await new Promise((resolve) => stream.stdout.once('end', resolve));
    expect(Buffer.concat(received).toString()).toBe('ERR No such file or directory\n');
    await servers.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

/** A unix socket served by `onConnection`, in a directory every user may reach (a helper runs as postgres). */
async function socketServer(onConnection: (connection: Socket) => void): Promise<{ path: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgplay-bridge-'));
  chmodSync(dir, 0o755);
  const path = join(dir, 'socket');
  const listener = createServer(onConnection);
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  chmodSync(path, 0o777);
  return { path, stop: () => (listener.close(), rmSync(dir, { recursive: true, force: true })) };
}

/** A server that keeps each connection open until the client ends its side. */
function keepsOpen(connection: Socket): void {
  connection.on('end', () => connection.end());
}

/** pids of this process's children that are runuser (a helper's, or a command's run directly). */
function runuserChildren(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(process.pid) && readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('runuser');
      } catch {
        return false;
      }
    });
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(condition()).toBe(true);
}
