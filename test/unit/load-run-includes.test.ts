/**
 * A run loads each included playbook once (app/load-run.ts): the engine's walk for the hosts to read,
 * the pre-flight and the steps take the same playbook, so what was checked is what runs, and a file
 * changed on disk during the run does not change it half-way.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadRun } from '../../src/app/load-run.js';
import { readRunInventory } from '../../src/app/run-inventory.js';
import type { RunRequest } from '../../src/app/request.js';

describe('included playbooks, once per run', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-load-run-'));
    await writeFile(join(dir, 'inventory.yml'), ['cluster: main', 'postgres: { version: 15 }', 'connection: { transport: local }', 'hosts:', '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }', ''].join('\n'));
    await writeFile(join(dir, 'playbook.yml'), ['name: outer', 'steps:', '  - { id: inner, hosts: db1, include: { playbook: inner.yml } }', ''].join('\n'));
    await writeFile(join(dir, 'inner.yml'), ['name: inner', 'steps:', '  - { id: first, command: { argv: [one] } }', ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** A run of a playbook of the test's directory, with its inventory and a state directory there. */
  const runOf = (playbook: string): RunRequest => ({
    playbookFile: join(dir, playbook),
    inventoryFile: join(dir, 'inventory.yml'),
    params: {},
    check: false,
    diff: false,
    stateDir: join(dir, 'state'),
    onEvent: () => undefined,
    warn: () => undefined,
  });

  it('every load of a file in a run gives the playbook first loaded, even after the file changed', async () => {
    const request = runOf('playbook.yml');
    const loaded = await loadRun(request, await readRunInventory(request));
    const first = await loaded.loadInclude('inner.yml', dir);
    expect(first.steps.map((s) => s.id)).toEqual(['first']);
    await writeFile(join(dir, 'inner.yml'), ['name: inner', 'steps:', '  - { id: changed, command: { argv: [two] } }', ''].join('\n'));
    expect(await loaded.loadInclude('inner.yml', dir)).toBe(first);
    expect(await loaded.loadInclude(join(dir, 'inner.yml'), '/elsewhere')).toBe(first);
    // Another run loads the file as it is now.
    const next = await loadRun(request, await readRunInventory(request));
    expect((await next.loadInclude('inner.yml', dir)).steps.map((s) => s.id)).toEqual(['changed']);
  });

  it("an included step's secret that cannot be resolved refuses as the top playbook's does (exit 2), once the run loads the include", async () => {
    delete process.env.PGPLAY_TEST_UNSET_PASSWORD;
    const pgpass = '{ id: pw, pgpass: { entries: [{ host: db1, user: app, password: { env: PGPLAY_TEST_UNSET_PASSWORD } }] } }';
    await writeFile(join(dir, 'top.yml'), ['name: top', 'steps:', '  - { id: stop, hosts: db1, command: { argv: [stop] } }', `  - ${pgpass.replace('id: pw, ', 'id: pw, hosts: db1, ')}`, ''].join('\n'));
    await writeFile(join(dir, 'inner.yml'), ['name: inner', 'steps:', `  - ${pgpass}`, ''].join('\n'));
    const top = runOf('top.yml');
    await expect(loadRun(top, await readRunInventory(top))).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('PGPLAY_TEST_UNSET_PASSWORD') });
    // The include is loaded by the run's first walk (the hosts to read, the pre-flight): refused there, before any step.
    const outer = runOf('playbook.yml');
    const loaded = await loadRun(outer, await readRunInventory(outer));
    await expect(loaded.loadInclude('inner.yml', dir)).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('PGPLAY_TEST_UNSET_PASSWORD') });
  });
});
