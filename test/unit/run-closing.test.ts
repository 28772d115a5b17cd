import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runPlaybook } from '../../src/app/run-playbook.js';
import { FakeTransport } from '../../src/transports/fake.js';

/**
 * The end of a run (app/run-from-inventory.ts): the locks are released and the journal ended first, then
 * the connections and command helpers close, which waits for their processes to exit (~40 ms of a drill's
 * end on two cores). The CLI asks to be handed the outcome meanwhile (returnWhileClosing) and writes the
 * reports and the evidence seal while they close, then awaits `closed`; any other caller gets the outcome
 * once everything is closed, as before.
 */
describe('the end of a run', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-closing-'));
    await writeFile(
      join(dir, 'inventory.yml'),
      ['cluster: closing', 'postgres: { version: 15 }', 'connection: { transport: local }', 'hosts:', '  db1: { address: 127.0.0.1, role: primary, pgdata: /pg/db1 }', ''].join('\n'),
    );
    await writeFile(join(dir, 'playbook.yml'), ['name: closing', 'steps:', '  - { id: one, hosts: all, command: { argv: [noop] } }', ''].join('\n'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A transport whose close() is done only when the test says so. */
  class SlowToClose extends FakeTransport {
    closing = false;
    closedNow!: () => void;
    private readonly done = new Promise<void>((resolve) => (this.closedNow = resolve));
    constructor(name: string) {
      super(name, (argv) => ({ exitCode: 0, stdout: argv.join(' ').includes('ln --') ? 'acquired' : '' }));
    }
    override async close(): Promise<void> {
      this.closing = true;
      await this.done;
    }
  }

  function start(returnWhileClosing: boolean | undefined, transports: SlowToClose[]) {
    return runPlaybook({
      playbookFile: join(dir, 'playbook.yml'),
      inventoryFile: join(dir, 'inventory.yml'),
      params: {},
      check: false,
      diff: false,
      stateDir: join(dir, 'state'),
      lockHosts: true,
      returnWhileClosing,
      onEvent: () => undefined,
      warn: () => undefined,
      createTransport: (host) => {
        const t = new SlowToClose(host.name);
        transports.push(t);
        return t;
      },
      gatherFacts: async () => ({ reachable: true, pgdata_present: true, running: true, in_recovery: false }),
    });
  }

  async function journalEnded(): Promise<boolean> {
    const runs = join(dir, 'state', 'runs');
    const [file] = (await readdir(runs)).filter((f) => f.endsWith('.jsonl'));
    const lines = (await readFile(join(runs, file!), 'utf8')).trim().split('\n');
    return JSON.parse(lines.at(-1)!).type === 'run-end';
  }

  it('with returnWhileClosing: the outcome comes with the journal ended while the transports close; the cluster stays locked until they are', async () => {
    const transports: SlowToClose[] = [];
    const outcome = await start(true, transports);
    expect(outcome.exitCode).toBe(0);
    expect(await journalEnded()).toBe(true);
    let closed = false;
    void outcome.closed.then(() => (closed = true));
    while (!transports.every((t) => t.closing)) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false);
    // No other run starts while this one still has sessions on the servers.
    expect(existsSync(join(dir, 'state', 'locks', 'closing.lock'))).toBe(true);
    for (const t of transports) t.closedNow();
    await outcome.closed;
    expect(closed).toBe(true);
    expect(existsSync(join(dir, 'state', 'locks', 'closing.lock'))).toBe(false);
  }, 10_000);

  it('without it: the outcome comes once every transport is closed', async () => {
    const transports: SlowToClose[] = [];
    let settled = false;
    const running = start(undefined, transports).then((o) => ((settled = true), o));
    while (!transports.length || !transports.every((t) => t.closing)) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    for (const t of transports) t.closedNow();
    expect((await running).exitCode).toBe(0);
  }, 10_000);
});
