/**
 * The core's promises seen through the CLI (issue 9): verbose output in a terminal, check mode that
 * cannot be switched off for writes, reports a playbook declares, shipped playbooks by name. Everything
 * here runs the real CLI against a local host without PostgreSQL: no cluster, no ports.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const CLI = resolve('dist/cli/main.js');
const CALL_TIMEOUT_MS = 60_000;
let dir: string;
let inventory: string;

async function pgplay(args: string[], options: { cwd?: string } = {}) {
  return execa('node', [CLI, ...args], { reject: false, cwd: options.cwd ?? dir, timeout: CALL_TIMEOUT_MS, env: { CI: 'true' } });
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

/** The CLI in a pseudo-terminal (util-linux script), wide enough for whole lines: listr2 draws there. */
async function pgplayInTerminal(args: string[]) {
  const command = `stty cols 200 rows 50; exec node ${[CLI, ...args].map(shellQuote).join(' ')}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CI;
  const r = await execa('script', ['-qec', command, '/dev/null'], { reject: false, cwd: dir, timeout: CALL_TIMEOUT_MS, env, extendEnv: false });
  return { ...r, screen: stripAnsi(r.stdout) };
}

async function playbook(name: string, text: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-cli-core-'));
  inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    [
      'cluster: core',
      'postgres: { version: 15, port: 5, socketDir: /nonexistent }',
      'connection: { transport: local }',
      'hosts:',
      `  db1: { address: 127.0.0.1, role: primary, pgdata: ${join(dir, 'no-pgdata')} }`,
      '',
    ].join('\n'),
  );
});

describe('-v/--verbose in a terminal', () => {
  const RETRY = ['name: retry', 'steps:', '  - id: flaky', '    hosts: db1', '    command: { argv: [sh, -c, "exit 3"] }', '    retries: 1', '    delay: 0s', '    ignore_errors: true', ''].join('\n');

  it('shows the log lines of a step under its host in the listr2 output', async () => {
    const file = await playbook('retry.yml', RETRY);
    const r = await pgplayInTerminal(['run', file, '-i', inventory, '-v']);
    expect(r.exitCode).toBe(0);
    // The terminal renderer drew (a spinner frame's step title), and the retry's log line is in it.
    expect(r.screen).toContain('step flaky: flaky');
    expect(r.screen).toContain('attempt 1 failed: sh exited with rc 3; retrying');
  });

  it('keeps them out without -v', async () => {
    const file = await playbook('retry.yml', RETRY);
    const r = await pgplayInTerminal(['run', file, '-i', inventory]);
    expect(r.exitCode).toBe(0);
    expect(r.screen).toContain('failed   db1');
    expect(r.screen).not.toContain('retrying');
  });
});

describe('check mode is absolute', () => {
  it('refuses, before anything runs, a step that would write under plan because of check_mode: false', async () => {
    const marker = join(dir, 'written-by-plan');
    const before = join(dir, 'ran-before');
    const file = await playbook(
      'write-under-plan.yml',
      [
        'name: write-under-plan',
        'steps:',
        '  - id: first',
        '    hosts: db1',
        `    command: { argv: [touch, ${before}] }`,
        '  - id: write',
        '    hosts: db1',
        `    command: { argv: [touch, ${marker}] }`,
        '    check_mode: false',
        '',
      ].join('\n'),
    );
    for (const args of [['plan', file], ['run', file, '--check']]) {
      const r = await pgplay([...args, '-i', inventory]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`${file}:9:17: step write has check_mode: false, which would run its command action for real under plan/--check`);
      expect(r.stdout).toBe('');
      expect(existsSync(marker)).toBe(false);
      expect(existsSync(before)).toBe(false);
    }
    // A real run is what may change things: the same step runs there.
    const run = await pgplay(['run', file, '-i', inventory]);
    expect(run.exitCode).toBe(0);
    expect(existsSync(marker)).toBe(true);
  });

  it('runs a read-only step with check_mode: false under plan, and its result feeds later steps', async () => {
    const file = await playbook(
      'read-under-plan.yml',
      [
        'name: read-under-plan',
        'steps:',
        '  - id: clock',
        '    hosts: db1',
        '    command: { argv: [date, +%s], changed_when: false }',
        '    check_mode: false',
        '    register: clock',
        '  - id: clock-was-read',
        '    hosts: db1',
        '    assert: { that: "int(clock.stdout) > 1700000000" }',
        '',
      ].join('\n'),
    );
    const r = await pgplay(['plan', file, '-i', inventory, '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step-result');
    expect(results.map((e: { step: string; status: string }) => `${e.step}=${e.status}`)).toEqual(['clock=ok', 'clock-was-read=ok']);
  });

  it('refuses a handler that would write under plan', async () => {
    const file = await playbook(
      'handler-under-plan.yml',
      [
        'name: handler-under-plan',
        'steps:',
        '  - id: look',
        '    hosts: db1',
        '    assert: { that: "true" }',
        'handlers:',
        '  wipe: { hosts: db1, command: { argv: [rm, -rf, /nonexistent/x] }, check_mode: false }',
        '',
      ].join('\n'),
    );
    const r = await pgplay(['plan', file, '-i', inventory]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/handler-under-plan\.yml:7:\d+: handler wipe has check_mode: false/);
  });
});
