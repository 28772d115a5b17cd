import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PgplayError, PgplayErrors } from '../../src/core/errors.js';
import type { RunEvent } from '../../src/engine/events.js';
import { gitInfo } from '../../src/journal/git.js';
import { journalFile } from '../../src/journal/paths.js';
import { findRun, listRuns, readJournal } from '../../src/journal/reader.js';
import { loadResume } from '../../src/journal/resume.js';
import type { JournalHeader } from '../../src/journal/types.js';
import { JournalWriter } from '../../src/journal/writer.js';
import type { Playbook } from '../../src/model/playbook.js';

const DIST_WRITER = resolve('dist/journal/writer.js');
const PLAYBOOK = '/srv/runbooks/standby.yml';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'pgplay-journal-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

let clock = Date.parse('2024-03-01T03:00:00Z');
function header(over: Partial<JournalHeader> = {}): JournalHeader {
  clock += 60_000;
  const started = new Date(clock).toISOString();
  return {
    type: 'journal',
    version: 1,
    runId: `${started.replace(/[-:]/g, '').replace(/\..*$/, '')}-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`,
    playbook: PLAYBOOK,
    playbookSha256: 'aa',
    inventory: '/srv/runbooks/inventory.yml',
    cluster: 'main',
    params: { host: 'db2', delta: true },
    check: false,
    options: {},
    git: null,
    resumeOf: null,
    pid: 999_999_999,
    hostname: hostname(),
    user: 'root',
    started,
    ...over,
  };
}

const t = '2024-03-01T03:00:00.000Z';
function result(step: string, host: string, status: 'ok' | 'changed' | 'skipped' | 'failed', handler = false): RunEvent {
  return { type: 'step-result', step, name: step, host, status, handler, attempts: 1, durationMs: 5, time: t };
}
function end(status: 'ok' | 'failed' | 'interrupted', exitCode: number): RunEvent {
  return { type: 'run-end', runId: 'x', status, exitCode, recap: {}, durationMs: 10, time: t };
}

/** Writes a whole journal the way a run does. */
function journal(h: JournalHeader, events: RunEvent[], registered: Array<{ step: string; host: string; name: string; value: unknown }> = []): JournalHeader {
  const w = JournalWriter.open(stateDir, h);
  for (const e of events) w.event(e);
  for (const r of registered) w.registered({ ...r, handler: false });
  w.close();
  return h;
}

/** A journal whose process died before it could end it (kill -9): no run-end. */
async function crashed(h: JournalHeader, events: RunEvent[]): Promise<JournalHeader> {
  await mkdir(join(stateDir, 'runs'), { recursive: true });
  await writeFile(journalFile(stateDir, h.runId), [h, ...events].map((r) => JSON.stringify(r) + '\n').join(''));
  return h;
}

const playbook: Playbook = {
  name: 'standby',
  params: { host: { type: 'string' }, delta: { type: 'boolean', default: true }, token: { type: 'string', secret: true } },
  steps: [
    { id: 'stop', hosts: 'db2', command: {} },
    { id: 'restore', hosts: 'db2', command: {} },
    { id: 'start', hosts: 'db2', command: {} },
  ],
  handlers: { reload: { hosts: 'db2', command: {} } },
};

describe('run journal', () => {
  it('is a private JSON-lines file: header, events in order, registered values; read back with status and counts', async () => {
    const h = journal(
      header(),
      [result('stop', 'db2', 'changed'), result('restore', 'db2', 'ok'), result('start', 'db2', 'failed'), end('failed', 1)],
      [{ step: 'restore', host: 'db2', name: 'restored', value: { stdout: 'done' } }],
    );
    const file = journalFile(stateDir, h.runId);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(stateDir, 'runs'))).mode & 0o777).toBe(0o700);
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['journal', 'step-result', 'step-result', 'step-result', 'run-end', 'registered']);
    const run = readJournal(file);
    expect(run.status).toBe('failed');
    expect(run.counts).toEqual({ ok: 1, changed: 1, skipped: 0, failed: 1 });
    expect(run.registered).toEqual([{ type: 'registered', step: 'restore', host: 'db2', handler: false, name: 'restored', value: { stdout: 'done' } }]);
  });

  it('survives a torn last line; a damaged line elsewhere is named by file and line', async () => {
    const h = await crashed(header(), [result('stop', 'db2', 'changed')]);
    const file = journalFile(stateDir, h.runId);
    await appendFile(file, '{"type":"step-res');
    const run = readJournal(file);
    expect(run.counts.changed).toBe(1);
    expect(run.status).toBe('incomplete');
    await writeFile(file, (await readFile(file, 'utf8')).replace('"step-result"', '"step-result",,') + '\n' + JSON.stringify(end('failed', 1)) + '\n');
    expect(() => readJournal(file)).toThrow(`${file}:2:1: the run journal is damaged (not JSON)`);
  });

  it('calls a journal without an end running while its process lives, incomplete after', async () => {
    const live = await crashed(header({ pid: process.pid }), [result('stop', 'db2', 'changed')]);
    expect(findRun(stateDir, live.runId).status).toBe('running');
    const dead = await crashed(header(), [result('stop', 'db2', 'changed')]);
    expect(findRun(stateDir, dead.runId).status).toBe('incomplete');
  });

  it('records the run as interrupted when the process exits at once (second Ctrl-C)', async () => {
    const h = header();
    const script = `
      const { JournalWriter } = await import(${JSON.stringify(DIST_WRITER)});
      const w = JournalWriter.open(process.argv[1], JSON.parse(process.argv[2]));
      w.event({ type: 'step-start', step: 'stop', name: 'stop', hosts: ['db2'], handler: false, time: 'now' });
      process.exit(130);
    `;
    const r = await execa('node', ['--input-type=module', '-e', script, stateDir, JSON.stringify(h)], { reject: false });
    expect(r.exitCode).toBe(130);
    const run = findRun(stateDir, h.runId);
    expect(run.status).toBe('interrupted');
    expect(run.end).toMatchObject({ exitCode: 130, error: { code: 'INTERRUPTED', message: 'interrupted: pgplay exited at once' } });
  });

  it('close() after an engine exception records the failure', () => {
    const h = header();
    const w = JournalWriter.open(stateDir, h);
    w.close(new PgplayError({ code: 'TRANSPORT', message: 'connection reset', host: 'db2' }));
    expect(findRun(stateDir, h.runId).end).toMatchObject({ status: 'failed', exitCode: 1, error: { code: 'TRANSPORT', message: 'connection reset', host: 'db2' } });
    const h2 = header();
    const w2 = JournalWriter.open(stateDir, h2);
    w2.close(new PgplayError({ code: 'RENDER', message: 'unknown variable vars.nope' }));
    expect(findRun(stateDir, h2.runId).end).toMatchObject({ status: 'invalid', exitCode: 2 });
  });

  it('refuses to overwrite an existing journal and names an unwritable state directory', async () => {
    const h = journal(header(), []);
    expect(() => JournalWriter.open(stateDir, h)).toThrow(/cannot write the run journal .*: EEXIST/);
    const file = join(stateDir, 'plain-file');
    await writeFile(file, '');
    const err = (() => {
      try {
        JournalWriter.open(file, header());
      } catch (e) {
        return e as PgplayError;
      }
    })()!;
    expect(err.exitCode).toBe(2);
    expect(err.hint).toMatch(/--state-dir/);
  });

  it('lists runs newest first and keeps unreadable files apart', async () => {
    const a = journal(header(), [end('failed', 1)]);
    const b = journal(header({ playbook: '/other.yml' }), [end('ok', 0)]);
    const c = journal(header({ check: true }), [end('ok', 0)]);
    await writeFile(join(stateDir, 'runs', '20240101T000000-abcdef.jsonl'), 'garbage\n');
    await writeFile(join(stateDir, 'runs', 'notes.txt'), 'ignored');
    const { runs, unreadable } = listRuns(stateDir);
    expect(runs.map((r) => r.header.runId)).toEqual([c.runId, b.runId, a.runId]);
    expect(unreadable).toHaveLength(1);
    expect(unreadable[0]!.message).toMatch(/20240101T000000-abcdef\.jsonl:1:1: not a pgplay run journal/);
    expect(listRuns(join(stateDir, 'missing'))).toEqual({ runs: [], unreadable: [] });
  });
});

describe('--resume: which run and what it did', () => {
  it('picks the newest real run of this playbook and collects its succeeded pairs with registered values', () => {
    const old = journal(header(), [result('stop', 'db2', 'changed'), end('failed', 1)]);
    const target = journal(
      header({ params: { host: 'db3', delta: false, token: '********' }, options: { limit: ['db3'] } }),
      [result('stop', 'db3', 'changed'), result('restore', 'db3', 'ok'), result('start', 'db3', 'failed'), end('failed', 1)],
      [{ step: 'restore', host: 'db3', name: 'restored', value: { stdout: 'restored to 0/3000028' } }],
    );
    journal(header({ playbook: '/other.yml' }), [end('failed', 1)]);
    journal(header({ check: true }), [end('ok', 0)]);
    const state = loadResume(stateDir, 'last', PLAYBOOK, 'aa', playbook);
    expect(state.fromRunId).toBe(target.runId);
    expect(state.fromRunId).not.toBe(old.runId);
    expect([...state.done.entries()]).toEqual([
      ['stop@db3', { status: 'changed', registered: {} }],
      ['restore@db3', { status: 'ok', registered: { restored: { stdout: 'restored to 0/3000028' } } }],
    ]);
    expect(state.params).toEqual({ host: 'db3', delta: 'false' });
    expect(state.maskedParams).toEqual(['token']);
    expect(state.options).toEqual({ limit: ['db3'] });
    expect(state.playbookChanged).toBe(false);
    expect(loadResume(stateDir, target.runId, PLAYBOOK, 'bb', playbook).playbookChanged).toBe(true);
  });

  it('follows a chain of resumed runs back to the first', () => {
    const first = journal(header(), [result('stop', 'db2', 'changed'), result('restore', 'db2', 'failed'), end('failed', 1)]);
    const second = journal(header({ resumeOf: first.runId }), [
      result('stop', 'db2', 'skipped'),
      result('restore', 'db2', 'changed'),
      result('start', 'db2', 'failed'),
      end('failed', 1),
    ]);
    const state = loadResume(stateDir, 'last', PLAYBOOK, 'aa', playbook);
    expect(state.fromRunId).toBe(second.runId);
    expect([...state.done.keys()]).toEqual(['stop@db2', 'restore@db2']);
    expect(state.done.get('stop@db2')!.status).toBe('changed');
  });

  it('keeps handlers apart from steps of the same name', () => {
    journal(header(), [
      { ...result('reload', 'db2', 'changed', true) },
      result('stop', 'db2', 'ok'),
      end('failed', 1),
    ]);
    expect([...loadResume(stateDir, 'last', PLAYBOOK, 'aa', playbook).done.keys()]).toEqual(['handler:reload@db2', 'stop@db2']);
  });

  const refusal = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return e as PgplayError;
    }
    throw new Error('expected a refusal');
  };

  it('refuses a run that completed, a plan, another playbook, one still running, and nothing to resume', async () => {
    expect(refusal(() => loadResume(stateDir, 'last', PLAYBOOK, 'aa', playbook)).message).toBe(
      `--resume: no earlier run of ${PLAYBOOK} in the journal at ${stateDir}`,
    );
    const ok = journal(header(), [result('stop', 'db2', 'changed'), end('ok', 0)]);
    const e1 = refusal(() => loadResume(stateDir, 'last', PLAYBOOK, 'aa', playbook));
    expect([e1.exitCode, e1.message]).toEqual([2, `run ${ok.runId} completed successfully; there is nothing to resume`]);
    const plan = journal(header({ check: true }), [end('failed', 1)]);
    expect(refusal(() => loadResume(stateDir, plan.runId, PLAYBOOK, 'aa', playbook)).message).toBe(
      `run ${plan.runId} was a check-mode run (plan); it changed nothing and cannot be resumed`,
    );
    const other = journal(header({ playbook: '/other.yml' }), [end('failed', 1)]);
    const e2 = refusal(() => loadResume(stateDir, other.runId, PLAYBOOK, 'aa', playbook));
    expect([e2.exitCode, e2.message, e2.hint]).toEqual([2, `run ${other.runId} ran /other.yml, not ${PLAYBOOK}`, `resume it with: pgplay run /other.yml --resume ${other.runId}`]);
    const running = await crashed(header({ pid: process.pid }), [result('stop', 'db2', 'changed')]);
    const e3 = refusal(() => loadResume(stateDir, running.runId, PLAYBOOK, 'aa', playbook));
    expect([e3.exitCode, e3.message]).toEqual([3, `run ${running.runId} is still running (pid ${process.pid} on ${hostname()})`]);
    expect(refusal(() => loadResume(stateDir, '20990101T000000-abcdef', PLAYBOOK, 'aa', playbook)).message).toBe(
      `no run 20990101T000000-abcdef in the journal at ${join(stateDir, 'runs')}`,
    );
    expect(refusal(() => loadResume(stateDir, '../../etc/passwd', PLAYBOOK, 'aa', playbook)).message).toBe('"../../etc/passwd" is not a run id');
  });

  it('refuses when steps the run finished were renamed or removed, naming each', () => {
    const h = journal(header(), [result('stop', 'db2', 'changed'), result('restore', 'db2', 'ok'), result('reload', 'db2', 'changed', true), end('failed', 1)]);
    const renamed: Playbook = { ...playbook, steps: [{ id: 'stop-db', hosts: 'db2', command: {} }, ...playbook.steps.slice(1)] };
    const one = refusal(() => loadResume(stateDir, 'last', PLAYBOOK, 'bb', renamed));
    expect(one.exitCode).toBe(2);
    expect(one.message).toBe(`cannot resume run ${h.runId}: step "stop" succeeded on db2 in that run but the playbook no longer has it (renamed or removed)`);
    const gutted: Playbook = { ...playbook, steps: [playbook.steps[2]!], handlers: {} };
    const many = refusal(() => loadResume(stateDir, 'last', PLAYBOOK, 'bb', gutted)) as unknown as PgplayErrors;
    expect(many).toBeInstanceOf(PgplayErrors);
    expect(many.errors.map((e) => e.message.replace(/^cannot resume run \S+: /, ''))).toEqual([
      'step "stop" succeeded on db2 in that run but the playbook no longer has it (renamed or removed)',
      'step "restore" succeeded on db2 in that run but the playbook no longer has it (renamed or removed)',
      'handler "reload" ran on db2 in that run but the playbook no longer has it (renamed or removed)',
    ]);
    // Steps added or reordered around the finished ones are fine.
    const grown: Playbook = { ...playbook, steps: [{ id: 'precheck', hosts: 'db2', command: {} }, ...playbook.steps] };
    expect(loadResume(stateDir, 'last', PLAYBOOK, 'bb', grown).done.size).toBe(3);
  });
});

describe('git provenance of a playbook', () => {
  it('records the commit and whether the file differs from it', async () => {
    const repo = join(stateDir, 'repo');
    const git = (...args: string[]) => execa('git', ['-C', repo, ...args]);
    await execa('git', ['init', '-q', repo]);
    await git('config', 'user.email', 'dba@example.com');
    await git('config', 'user.name', 'DBA');
    const file = join(repo, 'nightly.yml');
    await writeFile(file, 'name: a\n');
    expect(await gitInfo(file)).toBeNull(); // no commit yet
    await git('add', 'nightly.yml');
    await git('commit', '-qm', 'first');
    const head = (await git('rev-parse', 'HEAD')).stdout;
    expect(await gitInfo(file)).toEqual({ commit: head, dirty: false });
    await writeFile(file, 'name: b\n');
    expect(await gitInfo(file)).toEqual({ commit: head, dirty: true });
    const untracked = join(repo, 'new.yml');
    await writeFile(untracked, 'name: c\n');
    expect(await gitInfo(untracked)).toEqual({ commit: head, dirty: true });
    expect(await gitInfo(join(stateDir, 'outside.yml'))).toBeNull();
  });

  it('starts git only where a repository can be: none for a playbook outside any, as before inside one', async () => {
    // A git in front of the real one that notes each call: what the run started, not what it read.
    const bin = join(stateDir, 'git-bin');
    const calls = join(stateDir, 'git-calls');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'git'), `#!/bin/sh\necho "$*" >> ${calls}\nexec /usr/bin/git "$@"\n`, { mode: 0o755 });
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const outside = join(stateDir, 'plain', 'deeper');
      await mkdir(outside, { recursive: true });
      expect(await gitInfo(join(outside, 'nightly.yml'))).toBeNull();
      expect(existsSync(calls)).toBe(false);
      // In a subdirectory of a work tree, git still runs and answers.
      const repo = join(stateDir, 'repo2');
      await execa('git', ['init', '-q', repo]);
      await execa('git', ['-C', repo, '-c', 'user.email=dba@example.com', '-c', 'user.name=DBA', 'commit', '-q', '--allow-empty', '-m', 'first']);
      await mkdir(join(repo, 'runbooks'));
      await writeFile(join(repo, 'runbooks', 'nightly.yml'), 'name: a\n');
      const head = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout;
      expect(await gitInfo(join(repo, 'runbooks', 'nightly.yml'))).toEqual({ commit: head, dirty: true });
      expect(await readFile(calls, 'utf8')).toMatch(/rev-parse --verify -q HEAD/);
    } finally {
      process.env.PATH = path;
    }
  });
});
