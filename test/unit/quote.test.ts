import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { PgplayError } from '../../src/core/errors.js';
import { displayArgv, pidAnnouncement, remoteCommand, shQuote } from '../../src/transports/quote.js';

// sshd runs the command line with the login shell's -c; these tests run it the same way locally.
const SHELLS = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => existsSync(s));
const work = mkdtempSync(join(tmpdir(), 'pgplay-quote-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runShell(shell: string, line: string, cwd = work): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(shell, ['-c', line], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

const MARKER = () => join(work, 'pwned');
const hostile = () => [
  "it's",
  'say "hi"',
  `$(touch ${MARKER()})`,
  `\`touch ${MARKER()}\``,
  `a; touch ${MARKER()}`,
  `a && touch ${MARKER()} || true`,
  `line1\nline2\n`,
  '*',
  '/etc/*',
  '-rf',
  '--help',
  '$HOME ${HOME} $0 $@',
  "'\\''",
  '\\',
  '>out <in 2>&1 | cat',
  '~',
  '',
  ' spaced  ',
  '\t',
  'é ✓ \u0001\u001b[31m',
];

describe('shQuote', () => {
  test('wraps in single quotes and escapes embedded quotes', () => {
    expect(shQuote('abc')).toBe(`'abc'`);
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(shQuote('')).toBe(`''`);
  });

  test('rejects NUL, which no argv can carry', () => {
    expect(() => shQuote('a\0b')).toThrow(PgplayError);
  });

  test.each(SHELLS)('every string survives %s byte for byte (property)', (shell) => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }).filter((s) => !s.includes('\0')), { maxLength: 8 }), (values) => {
        const line = `printf '%s\\0' ${values.map(shQuote).join(' ')}`;
        const r = runShell(shell, values.length ? line : 'true');
        expect(r.status).toBe(0);
        const got = values.length ? r.stdout.toString('utf8').split('\0').slice(0, -1) : [];
        expect(got).toEqual(values.map((v) => Buffer.from(v, 'utf8').toString('utf8')));
      }),
      { numRuns: 60 },
    );
  });
});

describe('remoteCommand', () => {
  test('builds cd, env and the quoted argv in one line', () => {
    expect(remoteCommand(['ls', '-l'], { currentUser: 'root' })).toBe(`exec 'env' '--' 'ls' '-l'`);
    expect(remoteCommand(['ls'], { cwd: '/var/lib', env: { A: "x'y" }, currentUser: 'root' })).toBe(
      `cd -- '/var/lib' && exec 'env' '--' 'A=x'\\''y' 'ls'`,
    );
  });

  test('become wraps with runuser as root and sudo -n otherwise; env goes inside become', () => {
    expect(remoteCommand(['id'], { become: 'postgres', currentUser: 'root' })).toBe(`cd -- '/' && exec 'runuser' '-u' 'postgres' '--' 'id'`);
    expect(remoteCommand(['id'], { become: 'postgres', currentUser: 'deploy', env: { K: 'v' } })).toBe(
      `cd -- '/' && exec 'sudo' '-n' '-H' '-u' 'postgres' '--' 'env' '--' 'K=v' 'id'`,
    );
    expect(remoteCommand(['id'], { become: 'postgres', currentUser: 'root', cwd: '/srv' })).toBe(`cd -- '/srv' && exec 'runuser' '-u' 'postgres' '--' 'id'`);
    expect(remoteCommand(['id'], { become: 'root', currentUser: 'root' })).toBe(`exec 'env' '--' 'id'`);
  });

  test.each(SHELLS)('hostile argv, env and cwd reach the program literally under %s, nothing else runs', (shell) => {
    const values = hostile();
    const line = remoteCommand(['printf', '%s\\0', ...values], { currentUser: 'root' });
    const r = runShell(shell, line);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.toString('utf8').split('\0').slice(0, -1)).toEqual(values);
    expect(existsSync(MARKER())).toBe(false);

    const envLine = remoteCommand(['sh', '-c', 'printf %s "$V"'], {
      currentUser: 'root',
      env: { V: values.join('|') },
      cwd: work,
    });
    const e = runShell(shell, envLine, '/');
    expect(e.stdout.toString('utf8')).toBe(values.join('|'));
    expect(existsSync(MARKER())).toBe(false);
  });

  test('cwd is applied before the command, even a hostile directory name', () => {
    const dir = join(work, `d $(touch ${MARKER()}) '"`);
    spawnSync('mkdir', ['-p', dir]);
    const r = runShell('/bin/sh', remoteCommand(['pwd'], { cwd: dir, currentUser: 'root' }), '/');
    expect(r.stdout.toString()).toBe(`${dir}\n`);
    expect(existsSync(MARKER())).toBe(false);
  });

  test('the program is looked up on PATH, never a shell builtin, and a leading dash is a name', () => {
    // `cd` is only a builtin; as a program it does not exist, exactly as a local spawn would fail.
    const cd = runShell('/bin/bash', remoteCommand(['cd', '/'], { currentUser: 'root' }));
    expect(cd.status).toBe(127);
    const dash = runShell('/bin/bash', remoteCommand(['-x'], { currentUser: 'root' }));
    expect(dash.status).toBe(127);
    expect(dash.stderr).toContain('-x');
    const eq = runShell('/bin/bash', remoteCommand(['a=b', 'c'], { currentUser: 'root' }));
    expect(eq.status).toBe(127);
    expect(eq.stderr).toContain('a=b');
  });

  // runuser needs root; as another user these are reported as skipped, not as passes.
  const notRoot = process.getuid?.() !== 0;

  test.skipIf(notRoot)('runs as the become user (runuser, as root)', () => {
    const r = runShell('/bin/sh', remoteCommand(['id', '-un'], { become: 'postgres', currentUser: 'root' }));
    expect(r.stdout.toString()).toBe('postgres\n');
  });

  test.skipIf(notRoot)('as another user, starts in / rather than a home it may not enter', () => {
    const r = runShell('/bin/sh', remoteCommand(['sh', '-c', 'pwd; ls . >/dev/null'], { become: 'postgres', currentUser: 'root' }), '/root');
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toBe('/\n');
  });

  test('pidTag announces the process-group leader on stderr before the command runs', () => {
    const line = remoteCommand(['sh', '-c', 'echo $$; echo err >&2'], { pidTag: 'abc123', currentUser: 'root' });
    const r = runShell('/bin/sh', line);
    const m = /^pgplay-pid:abc123:(\d+)\nerr\n$/.exec(r.stderr);
    expect(m).not.toBeNull();
    // exec keeps the pid: the announced pid is the command's own.
    expect(r.stdout.toString()).toBe(`${m![1]}\n`);
    expect(pidAnnouncement('abc123').exec(r.stderr)?.[1]).toBe(m![1]);
    expect(() => remoteCommand(['true'], { pidTag: "x'; rm", currentUser: 'root' })).toThrow(/pidTag/);
  });

  test('refuses what a command line cannot carry', () => {
    expect(() => remoteCommand([], { currentUser: 'root' })).toThrow(/empty command/);
    expect(() => remoteCommand(['x'], { currentUser: 'root', env: { 'A=B': '1' } })).toThrow(/invalid environment variable name/);
    expect(() => remoteCommand(['x'], { currentUser: 'root', env: { '': '1' } })).toThrow(PgplayError);
    expect(() => remoteCommand(['x', 'a\0'], { currentUser: 'root' })).toThrow(/NUL/);
  });
});

describe('displayArgv', () => {
  test('quotes only what needs quoting', () => {
    expect(displayArgv(['pg_ctl', '-D', '/var/lib/pg', 'start'])).toBe('pg_ctl -D /var/lib/pg start');
    expect(displayArgv(['echo', 'a b', "it's"])).toBe(`echo 'a b' 'it'\\''s'`);
  });
});
