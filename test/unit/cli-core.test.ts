/**
 * The core's promises seen through the CLI (issue 9): verbose output in a terminal, check mode that
 * cannot be switched off for writes, reports a playbook declares, shipped playbooks by name. Everything
 * here runs the real CLI against a local host without PostgreSQL: no cluster, no ports.
 */
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { fileTempDir } from '../support/temp-dirs.js';

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
  dir = fileTempDir('cli-core');
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

describe('shipped playbooks as commands', () => {
  const SHIPPED = resolve('playbooks');
  const runStart = (stdout: string) => JSON.parse(stdout.trim().split('\n')[0]!) as { type: string; playbook: string; shipped?: boolean };

  it('pgplay playbooks lists them with their description and params', async () => {
    const r = await pgplay(['playbooks']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('nightly-backup  (pgplay run nightly-backup.yml;');
    expect(r.stdout).toMatch(/\n {4}type +string, one of auto\|full\|diff\|incr, default "auto": auto takes a full backup/);
    expect(r.stdout).toMatch(/\n {4}candidate +string, required: The standby to promote\./);

    const json = await pgplay(['playbooks', '--output', 'json']);
    expect(json.exitCode).toBe(0);
    const { playbooks } = JSON.parse(json.stdout) as { playbooks: Array<{ name: string; file: string; description: string; params: Record<string, Record<string, unknown>> }> };
    // Every playbook file pgplay ships (include/ holds parts, not playbooks), by name.
    const shipped = readdirSync(SHIPPED).filter((f) => f.endsWith('.yml')).map((f) => f.slice(0, -'.yml'.length)).sort();
    expect(shipped).toEqual(expect.arrayContaining(['nightly-backup', 'pitr-drill', 'promote', 'standby-from-backup']));
    expect(playbooks.map((p) => p.name)).toEqual(shipped);
    const promote = playbooks.find((p) => p.name === 'promote')!;
    expect(promote.file).toBe(join(SHIPPED, 'promote.yml'));
    expect(promote.description).toMatch(/^Planned promotion/);
    expect(promote.params.candidate).toMatchObject({ type: 'string', required: true });
    expect(playbooks.find((p) => p.name === 'pitr-drill')!.params.keep).toMatchObject({ type: 'boolean', required: false, default: false });
  });

  it('runs a shipped playbook by the name users type, with or without .yml, and says it is the shipped one', async () => {
    for (const name of ['nightly-backup.yml', 'nightly-backup']) {
      const r = await pgplay(['plan', name, '-i', inventory, '--output', 'json']);
      expect(r.stderr).not.toContain('cannot read');
      expect(runStart(r.stdout)).toMatchObject({ type: 'run-start', playbook: join(SHIPPED, 'nightly-backup.yml'), shipped: true });
    }
    const human = await pgplay(['plan', 'nightly-backup.yml', '-i', inventory]);
    expect(human.stdout.split('\n')[0]).toBe(`PLAYBOOK ${join(SHIPPED, 'nightly-backup.yml')} (shipped with pgplay) [check mode: nothing will be changed]`);
  });

  it('lets a file in the current directory win over the shipped playbook of that name', async () => {
    const local = await mkdtemp(join(dir, 'local-'));
    const mine = join(local, 'nightly-backup.yml');
    await writeFile(mine, ['name: mine', 'steps:', '  - { id: look, hosts: db1, assert: { that: "true" } }', ''].join('\n'));
    for (const name of ['nightly-backup.yml', 'nightly-backup']) {
      const r = await pgplay(['plan', name, '-i', inventory, '--output', 'json'], { cwd: local });
      expect(r.exitCode).toBe(0);
      const start = runStart(r.stdout);
      expect(start.playbook).toBe(mine);
      expect(start.shipped).toBeUndefined();
    }
  });

  it('names the shipped playbooks when a name matches neither a file nor one of them', async () => {
    const r = await pgplay(['plan', 'nightly-bakup.yml', '-i', inventory]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('no playbook nightly-bakup.yml');
    expect(r.stderr).toContain('nightly-backup, pitr-drill, prepare, promote');
  });

  it('--resume with an unknown run id says "no such run" and how to find runs', async () => {
    const file = await playbook('resumable.yml', ['name: resumable', 'steps:', '  - { id: look, hosts: db1, assert: { that: "true" } }', ''].join('\n'));
    for (const id of ['20990101T000000-abcdef', 'bogus']) {
      const r = await pgplay(['run', file, '-i', inventory, '--resume', id]);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain(`error: no such run: ${id}`);
      expect(r.stderr).toContain('pgplay history lists the runs');
      expect(r.stdout).toBe('');
    }
  });
});

describe('reports are declared, not guessed', () => {
  const stateDir = () => process.env.PGPLAY_STATE_DIR!;
  const runIdOf = (stdout: string) => /run (\d{8}T\d{6}-[0-9a-f]+) /.exec(stdout)![1]!;
  const REGISTERING = [
    '  - id: drill-ish',
    '    hosts: db1',
    '    command: { argv: ["true"] }',
    '    register: drill_x',
    '  - id: promote-ish',
    '    hosts: db1',
    '    command: { argv: ["true"] }',
    '    register: promotion',
    '',
  ];

  it('a playbook that declares no report prints none, whatever names it registers', async () => {
    const file = await playbook('names-only.yml', ['name: names-only', 'steps:', ...REGISTERING].join('\n'));
    const r = await pgplay(['run', file, '-i', inventory]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('changed  db1');
    expect(r.stdout).not.toContain('DRILL');
    expect(r.stdout).not.toContain('TOPOLOGY CHANGED');
    expect(existsSync(join(stateDir(), 'drills', `${runIdOf(r.stdout)}.json`))).toBe(false);
  });

  it('a declared promotion report is built from the values it names, and is a topology-changed event in JSON', async () => {
    const file = await playbook(
      'declares-promotion.yml',
      ['name: declares-promotion', 'report:', '  kind: promotion', '  outputs: { promoted: promotion }', 'steps:', ...REGISTERING].join('\n'),
    );
    const human = await pgplay(['run', file, '-i', inventory]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain('TOPOLOGY CHANGED: db1 is the primary now');
    // Not the lab's inventory: nothing rewrites it, the user is told what to change.
    expect(human.stdout).toContain(`${inventory} still describes the old topology`);

    const json = await pgplay(['run', file, '-i', inventory, '--output', 'json']);
    expect(json.exitCode).toBe(0);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ type: 'topology-changed', primary: 'db1', inventory, previousPrimaryStreams: false });

    // plan changes nothing, so there is no topology change to report.
    const plan = await pgplay(['plan', file, '-i', inventory]);
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).not.toContain('TOPOLOGY CHANGED');
  });

  it('refuses a declaration fed by a value no step registers, or of an unknown kind', async () => {
    const misspelt = await playbook(
      'misspelt-report.yml',
      ['name: misspelt-report', 'report:', '  kind: promotion', '  outputs: { promoted: promoton }', 'steps:', ...REGISTERING].join('\n'),
    );
    const r = await pgplay(['run', misspelt, '-i', inventory]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`${misspelt}:4:24: report output promoted: no step registers "promoton"; did you mean "promotion"?`);

    const unknown = await playbook(
      'unknown-report.yml',
      ['name: unknown-report', 'report:', '  kind: audit', '  outputs: {}', 'steps:', ...REGISTERING].join('\n'),
    );
    const u = await pgplay(['validate', unknown]);
    expect(u.exitCode).toBe(2);
    expect(u.stderr).toMatch(/unknown-report\.yml:3:9: .*drill, promotion/);
  });
});

describe('--from a step inside an include (the backup tools\' steps live in include/backup/<tool>/)', () => {
  it('accepts <include-id>/<step> and starts there; an id that names no step, in or out of an include, is a usage error (exit 2)', async () => {
    await playbook('tool-steps.yml', ['name: tool-steps', 'steps:', '  - { id: conf, command: { argv: ["true"] } }', '  - { id: restore, command: { argv: ["true"] } }', ''].join('\n'));
    const file = await playbook(
      'with-tool.yml',
      ['name: with-tool', 'steps:', '  - { id: first, hosts: db1, command: { argv: ["true"] } }', '  - { id: tool, hosts: db1, include: { playbook: tool-steps.yml } }', '  - { id: last, hosts: db1, command: { argv: ["true"] } }', ''].join('\n'),
    );
    const r = await pgplay(['run', file, '-i', inventory, '--from', 'tool/restore', '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'step-result');
    expect(results.map((e: { step: string; status: string }) => `${e.step}=${e.status}`)).toEqual(['tool/restore=changed', 'last=changed']);
    for (const wrong of ['tool/restor', 'first/conf', 'nothing/restore']) {
      const bad = await pgplay(['run', file, '-i', inventory, '--from', wrong]);
      expect(bad.exitCode, wrong).toBe(2);
      expect(bad.stderr).toContain(`error: --from: no step with id "${wrong}" in ${file}`);
    }
  });
});
