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
