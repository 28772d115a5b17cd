import { readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunEvent } from '../../src/engine/events.js';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { journalFile } from '../../src/journal/paths.js';
import { findRun } from '../../src/journal/reader.js';
import type { JournalHeader } from '../../src/journal/types.js';
import { JournalWriter } from '../../src/journal/writer.js';
import { FakeTransport } from '../../src/transports/fake.js';

/**
 * The journal's durability rule: one fsync per step that changed something, once all its hosts have
 * reported, and one at the run's end; never one per event. Each sync is described by the last record on disk when it happened,
 * so the tests pin both how many syncs there are and that a step is on disk before the next starts.
 */

// Every real fsync of the process, by the path of what it syncs: the engine-level test counts them.
const fsyncs = vi.hoisted(() => ({ paths: [] as string[] }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fsyncSync = (fd: number) => {
    fsyncs.paths.push(fs.readlinkSync(`/proc/self/fd/${fd}`));
    fs.fsyncSync(fd);
  };
  return { ...fs, default: { ...fs, fsyncSync }, fsyncSync };
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-journal-fsync-'));
  fsyncs.paths.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What the last record of a journal file is: `journal`, `run-end`, `step-result step@host`, ... */
function lastRecord(file: string): string {
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  const r = JSON.parse(lines[lines.length - 1]!) as { type: string; step?: string; host?: string };
  return r.type === 'step-result' || r.type === 'registered' || r.type === 'log' ? `${r.type} ${r.step}@${r.host}` : r.type;
}

/** A writer whose every sync is recorded as the last record on disk at that moment ('dir' for the directory). */
function recordingWriter(stateDir: string): { writer: JournalWriter; syncs: string[] } {
  const syncs: string[] = [];
  const writer = JournalWriter.open(stateDir, header(), () => {}, {
    sync: (fd) => {
      const path = readlinkSync(`/proc/self/fd/${fd}`);
      syncs.push(path.endsWith('.jsonl') ? lastRecord(path) : 'dir');
    },
  });
  return { writer, syncs };
}

const t = '2024-03-01T03:00:00.000Z';
function header(): JournalHeader {
  return {
    type: 'journal',
    version: 1,
    runId: `20240301T030000-${Math.random().toString(16).slice(2, 8).padEnd(6, '0')}`,
    playbook: '/srv/runbooks/standby.yml',
    playbookSha256: 'aa',
    inventory: '/srv/runbooks/inventory.yml',
    cluster: 'main',
    params: {},
    check: false,
    options: {},
    git: null,
    resumeOf: null,
    pid: process.pid,
    hostname: hostname(),
    user: 'root',
    started: t,
  };
}
const start = (step: string, hosts: string[], handler = false): RunEvent => ({ type: 'step-start', step, name: step, hosts, handler, time: t });
const result = (step: string, host: string, handler = false, status: 'changed' | 'ok' | 'failed' = 'changed'): RunEvent => ({
  type: 'step-result',
  step,
  name: step,
  host,
  status,
  handler,
  attempts: 1,
  durationMs: 5,
  time: t,
});
const log = (step: string, host: string): RunEvent => ({ type: 'log', step, host, line: 'output', time: t });
const runStart: RunEvent = { type: 'run-start', runId: 'x', playbook: 'p', inventory: 'i', check: false, hosts: ['db1', 'db2', 'db3'], steps: [], time: t };
const runEnd = (status: 'ok' | 'interrupted', exitCode: number): RunEvent => ({ type: 'run-end', runId: 'x', status, exitCode, recap: {}, durationMs: 10, time: t });

describe('JournalWriter syncs', () => {
  it('once per step, after the last of its hosts reports, and at the end; the header and its directory at creation', () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    expect(syncs).toEqual(['journal', 'dir']);

    writer.event(runStart);
    writer.event(start('prepare', ['db1', 'db2', 'db3']));
    writer.event(log('prepare', 'db2'));
    writer.event(result('prepare', 'db2'));
    writer.registered({ step: 'prepare', host: 'db1', handler: false, name: 'prep', value: { rc: 0 } });
    writer.event(result('prepare', 'db1'));
    expect(syncs).toEqual(['journal', 'dir']);
    writer.event(result('prepare', 'db3'));
    expect(syncs).toEqual(['journal', 'dir', 'step-result prepare@db3']);

    writer.event(start('apply', ['db1']));
    writer.event(result('apply', 'db1'));
    // A handler named like a step is a step of its own.
    writer.event(start('apply', ['db1', 'db2'], true));
    writer.event(result('apply', 'db1', true));
    writer.event(result('apply', 'db2', true));
    writer.event(runEnd('ok', 0));
    writer.close();
    expect(syncs).toEqual(['journal', 'dir', 'step-result prepare@db3', 'step-result apply@db1', 'step-result apply@db2', 'run-end']);
  });

  it('a step that changed nothing on any host is not synced: running it again is only its check', () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    writer.event(start('converged', ['db1', 'db2']));
    writer.event(result('converged', 'db1', false, 'ok'));
    writer.event(result('converged', 'db2', false, 'ok'));
    writer.event(start('failing', ['db1']));
    writer.event(result('failing', 'db1', false, 'failed'));
    expect(syncs.slice(2)).toEqual([]);
    // One host's change is enough, whatever order the hosts report in.
    writer.event(start('mixed', ['db1', 'db2']));
    writer.event(result('mixed', 'db1', false, 'changed'));
    writer.event(result('mixed', 'db2', false, 'ok'));
    expect(syncs.slice(2)).toEqual(['step-result mixed@db2']);
    writer.event(runEnd('ok', 0));
    writer.close();
    expect(syncs.slice(2)).toEqual(['step-result mixed@db2', 'run-end']);
  });

  it('a step whose hosts did not all report is on disk before the next step starts', () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    writer.event(start('prepare', ['db1', 'db2']));
    writer.event(result('prepare', 'db1'));
    writer.event(start('apply', ['db1']));
    expect(syncs.slice(2)).toEqual(['step-result prepare@db1']);
    writer.event(result('apply', 'db1'));
    expect(syncs.slice(2)).toEqual(['step-result prepare@db1', 'step-result apply@db1']);
    writer.close();
  });

  it('an interrupted step is synced with the run-end that close() records', () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    writer.event(start('prepare', ['db1', 'db2']));
    writer.event(result('prepare', 'db2'));
    writer.close();
    expect(syncs.slice(2)).toEqual(['run-end']);
    const lines = readFileSync(writer.file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(lines.map((l) => l.type)).toEqual(['journal', 'step-start', 'step-result', 'run-end']);
  });

  it("a loop's items reported after every host has are each synced when they changed something, and only then", () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    const item = (host: string, index: number, status: 'changed' | 'ok'): RunEvent => ({ ...result('each', host, false, status), index, item: `i${index}`, items: 3 } as RunEvent);
    writer.event(start('each', ['db1', 'db2']));
    writer.event(item('db1', 0, 'changed'));
    writer.event(item('db1', 1, 'ok'));
    writer.event(item('db2', 0, 'ok'));
    expect(syncs.slice(2)).toEqual(['step-result each@db2']);
    writer.event(item('db2', 1, 'ok'));
    writer.event(item('db2', 2, 'changed'));
    writer.event(start('next', ['db1']));
    expect(syncs.slice(2)).toEqual(['step-result each@db2', 'step-result each@db2']);
    writer.close();
  });

  it('a result outside the step in progress is synced at once', () => {
    const { writer, syncs } = recordingWriter(join(dir, 'state'));
    writer.event(start('prepare', ['db1', 'db2']));
    writer.event(result('other', 'db1'));
    expect(syncs.slice(2)).toEqual(['step-result other@db1']);
    writer.close();
  });
});

describe('a journaled run through the engine', () => {
  it('fsyncs its journal once per step and once at the end, each step before the next one starts', async () => {
    const stateDir = join(dir, 'state');
    const inventoryFile = join(dir, 'inventory.yml');
    const playbookFile = join(dir, 'playbook.yml');
    await writeFile(
      inventoryFile,
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
    await writeFile(
      playbookFile,
      [
        'name: fsync-count',
        'steps:',
        '  - { id: one, hosts: all, command: { argv: [one] }, register: first, notify: [reload] }',
        '  - { id: two, hosts: all, command: { argv: [two] } }',
        '  - { id: three, hosts: db1, command: { argv: [three] } }',
        'handlers:',
        '  reload: { hosts: all, command: { argv: [reload] } }',
        '',
      ].join('\n'),
    );
    // How many times the journal was synced when each step starts.
    const onDiskAtStart: Record<string, number> = {};
    let journal = '';
    const journalSyncs = () => fsyncs.paths.filter((p) => p === journal).length;
    const events: RunEvent[] = [];
    const outcome = await runPlaybook({
      playbookFile,
      inventoryFile,
      params: {},
      check: false,
      diff: false,
      stateDir,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'run-start') journal = journalFile(stateDir, e.runId);
        if (e.type === 'step-start') onDiskAtStart[e.step] = journalSyncs();
      },
      createTransport: (host) => new FakeTransport(host.name, () => ({ stdout: 'x' })),
      gatherFacts: async () => ({ reachable: true, pgdata_present: true, running: true, in_recovery: false }),
    });
    expect(outcome.exitCode).toBe(0);
    expect(events.filter((e) => e.type === 'step-result')).toHaveLength(3 + 3 + 1 + 3);

    // The header, then one per step (one, two, three and the handler), then the run-end.
    expect(journalSyncs()).toBe(1 + 4 + 1);
    // Each step starts once the one before it is synced: the header alone before the first.
    expect(onDiskAtStart).toEqual({ one: 1, two: 2, three: 3, reload: 4 });
    expect(findRun(stateDir, outcome.runId).status).toBe('ok');
  });
});
