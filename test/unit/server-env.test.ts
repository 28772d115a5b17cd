/**
 * cleanServerEnv (src/postgres/server-env.ts): the command a server is started with sees PATH, PGDATA
 * and the session's plain locale variables only, its arguments unchanged, and picking the locale starts
 * no process of its own.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pgCtlStart } from '../../src/postgres/pg-ctl.js';
import { cleanServerEnv, LOG_DIRECTORY_FAILED, SERVER_PATH } from '../../src/postgres/server-env.js';
import { FakeTransport } from '../../src/transports/fake.js';
import { actionContext, host } from './support/engine-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'pgplay-server-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs cleanServerEnv's argv around a command that prints its environment, then its arguments, one per line. */
function started(env: Record<string, string>, args: string[] = []): { env: string[]; args: string[] } {
  const argv = cleanServerEnv('/srv/pg data/15', ['/bin/sh', '-c', '/usr/bin/env; echo --; for a in "$@"; do echo "$a"; done', 'server', ...args]);
  const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const [printed, given] = r.stdout.split('--\n') as [string, string];
  return { env: printed.split('\n').filter((l) => l !== '').sort(), args: given.split('\n').slice(0, -1) };
}

describe('cleanServerEnv', () => {
  it('passes PATH, PGDATA and the locale variables set to a plain value, nothing else; the arguments as given', () => {
    const out = started(
      {
        PATH: process.env.PATH!,
        LANG: 'C.UTF-8',
        LC_ALL: '',
        LC_MESSAGES: 'en_US.UTF-8@euro',
        LC_TIME: 'de_DE.UTF-8 ; rm -rf /',
        LC_NUMERIC: '$(id)',
        LANGUAGE: 'en',
        PGPLAY_SECRET: 'never',
        PGPASSWORD: 'never',
      },
      ['-D', '/srv/pg data/15', '*', '$HOME'],
    );
    // sh itself sets PWD (and may set SHLVL and _); what matters is that nothing of the caller's is there.
    expect(out.env.filter((l) => !/^(PWD|SHLVL|_)=/.test(l))).toEqual(
      ['LANG=C.UTF-8', 'LC_ALL=', 'LC_MESSAGES=en_US.UTF-8@euro', `PATH=${SERVER_PATH}`, 'PGDATA=/srv/pg data/15'].sort(),
    );
    expect(out.args).toEqual(['-D', '/srv/pg data/15', '*', '$HOME']);
  });

  it('hands a data directory with quotes, dollars and a leading dash over unchanged', () => {
    const pgdata = "-x/it's $HOME `id` \"q\"";
    const argv = cleanServerEnv(pgdata, ['/bin/sh', '-c', 'printf "%s\\n" "$PGDATA" "$1"', 'server', pgdata], join(dir, "log $(touch pwned)"));
    const r = spawnSync(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH! }, cwd: dir, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${pgdata}\n${pgdata}\n`);
    expect(existsSync(join(dir, 'log $(touch pwned)'))).toBe(true);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('passes no locale the session does not set', () => {
    const out = started({ PATH: process.env.PATH! });
    expect(out.env.filter((l) => !/^(PWD|SHLVL|_)=/.test(l))).toEqual([`PATH=${SERVER_PATH}`, 'PGDATA=/srv/pg data/15']);
  });

  it("makes the log's directory first; when it cannot, exits LOG_DIRECTORY_FAILED with mkdir's message and starts nothing", () => {
    const logs = join(dir, 'pgdata', 'log', 'deeper');
    const marker = join(dir, 'started');
    const start = (logDirectory: string) => {
      const argv = cleanServerEnv('/srv/pg', ['/bin/sh', '-c', `echo yes > '${marker}'`], logDirectory);
      return spawnSync(argv[0]!, argv.slice(1), { env: { PATH: process.env.PATH!, LC_ALL: 'C' }, encoding: 'utf8' });
    };
    const made = start(logs);
    expect(made.status).toBe(0);
    expect(existsSync(logs)).toBe(true);
    expect(existsSync(marker)).toBe(true);
    rmSync(marker);
    // A file where a directory of the path should be.
    writeFileSync(join(dir, 'blocked'), '');
    const refused = start(join(dir, 'blocked', 'log'));
    expect(refused.status).toBe(LOG_DIRECTORY_FAILED);
    expect(refused.stderr).toMatch(/^mkdir: .*blocked.*Not a directory/);
    expect(existsSync(marker)).toBe(false);
  });

  it('runs no mkdir where the log directory is there already', () => {
    const spy = markingBin('bin-mkdir', { mkdir: { mark: 'mkdir', real: '/bin/mkdir' } });
    const run = (logDirectory: string) => {
      const argv = cleanServerEnv('/srv/pg', ['/bin/true'], logDirectory);
      return spawnSync(argv[0]!, argv.slice(1), { env: { PATH: `${spy.bin}:/usr/bin:/bin` }, encoding: 'utf8' });
    };
    expect(run(dir).status).toBe(0);
    expect(spy.marks()).toEqual([]);
    expect(run(join(dir, 'new-log')).status).toBe(0);
    expect(existsSync(join(dir, 'new-log'))).toBe(true);
    expect(spy.marks()).toEqual(['mkdir']);
  });

  it('starts no process to pick the locale: only the env that starts the server', () => {
    // A PATH whose grep and env leave a mark, the env then handing over to the real one.
    const spy = markingBin('bin', { grep: { mark: 'grep', real: '/usr/bin/grep' }, env: { mark: 'env $1', real: '/usr/bin/env' } });
    const out = started({ PATH: `${spy.bin}:/usr/bin:/bin`, LANG: 'C.UTF-8' });
    expect(out.env).toContain('LANG=C.UTF-8');
    expect(spy.marks()).toEqual(['env -i']);
  });
});

/**
 * A directory for PATH whose commands each append their `mark` (a shell word, expanded) to a file and run
 * the real command; marks() reads the lines appended so far.
 */
function markingBin(name: string, commands: Record<string, { mark: string; real: string }>): { bin: string; marks: () => string[] } {
  const bin = join(dir, name);
  const file = join(dir, `${name}.marks`);
  mkdirSync(bin, { recursive: true });
  for (const [command, { mark, real }] of Object.entries(commands)) {
    writeFileSync(join(bin, command), `#!/bin/sh\necho "${mark}" >> '${file}'\nexec ${real} "$@"\n`, { mode: 0o755 });
  }
  return { bin, marks: () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []) };
}

describe('pgCtlStart: a log directory that cannot be made', () => {
  it("reports mkdir's words and mkdir as the command, not the start's shell and its status", async () => {
    const seen: string[][] = [];
    const transport = new FakeTransport('db1', (argv) => {
      seen.push(argv);
      return argv.includes('pgplay-clean-env')
        ? { exitCode: LOG_DIRECTORY_FAILED, stderr: "mkdir: cannot create directory '/pg/db1/log': Permission denied\n" }
        : { exitCode: 0, stdout: '' };
    });
    const ctx = actionContext({ host: host('db1', 'primary'), transport });
    const started = pgCtlStart(ctx, '/pg/db1', { command: 'start', waitMs: 5_000 });
    await expect(started).rejects.toMatchObject({
      code: 'STEP_FAILED',
      message: "cannot create the directory of the log file /pg/db1/log/pgplay-startup.log: mkdir: cannot create directory '/pg/db1/log': Permission denied",
      command: { argv: ['mkdir', '-p', '--', '/pg/db1/log'] },
    });
    // One command: the start's shell, given the directory to make (no mkdir of its own before it).
    expect(seen.map((argv) => argv.slice(0, 6))).toEqual([['/bin/sh', '-c', expect.any(String), 'pgplay-clean-env', '/pg/db1', '/pg/db1/log']]);
  });
});
