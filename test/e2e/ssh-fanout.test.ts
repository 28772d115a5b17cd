/**
 * Fan-out over SSH through the CLI: four hosts (four loopback addresses of one real sshd) converge
 * a directory, a rendered file and a timed command in parallel, each over its own single connection;
 * --forks bounds how many hosts work at once, measured from the start/end stamps the hosts wrote,
 * not from wall time. (step-result events are emitted together once a step ends on every host, so
 * their times cannot show per-host overlap.)
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type Sshd } from '../support/sshd.js';
import {
  FIXTURES,
  connectionsPerAddress,
  jsonEvents,
  logSince,
  pgplay,
  resultsByHost,
  sessionsLeft,
  writeInventory,
} from './fixtures/ssh/support.js';

const PLAYBOOK = join(FIXTURES, 'fanout.yml');
const HOSTS = { n1: '127.0.0.2', n2: '127.0.0.3', n3: '127.0.0.4', n4: '127.0.0.5' } as const;
const NAMES = Object.keys(HOSTS) as Array<keyof typeof HOSTS>;

let sshd: Sshd;
let dir: string;
let stateDir: string;
let inventory: string;

const root = (host: string) => join(dir, 'hosts', host);

beforeAll(async () => {
  sshd = await startSshd({ addresses: Object.values(HOSTS) });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-ssh-fanout-'));
  stateDir = join(dir, 'state');
  inventory = await writeInventory(join(dir, 'inventory.yml'), {
    cluster: 'fanout',
    sshd,
    hosts: Object.fromEntries(
      NAMES.map((name, i) => [
        name,
        {
          address: HOSTS[name],
          extra: `${i === 0 ? `role: primary, pgdata: ${join(root(name), 'pgdata')}` : 'role: repository'}, vars: { root: ${root(name)} }`,
        },
      ]),
    ),
  });
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Interval {
  host: string;
  start: number;
  end: number;
}

/** The work step's [start, end] on every host, from the stamps the host wrote (seconds, ns precision). */
async function stamps(wave: string): Promise<Interval[]> {
  return Promise.all(
    NAMES.map(async (host) => {
      const read = async (f: string) => Number((await readFile(join(root(host), wave, f), 'utf8')).trim());
      return { host, start: await read('start'), end: await read('end') };
    }),
  );
}

/** The most intervals that were open at the same instant. */
function maxConcurrent(intervals: Interval[]): number {
  return Math.max(...intervals.map((a) => intervals.filter((b) => b.start <= a.start && a.start < b.end).length));
}

async function runWave(wave: string, extra: string[] = []) {
  const mark = sshd.logs().length;
  const r = await pgplay(['run', PLAYBOOK, '-i', inventory, '-p', `wave=${wave}`, ...extra], stateDir);
  return { ...r, connections: connectionsPerAddress(logSince(sshd, mark), sshd.port) };
}

const ONE_EACH = Object.fromEntries(Object.values(HOSTS).map((a) => [a, 1]));

describe('fan-out over SSH to four hosts', () => {
  it('converges every host in parallel, one connection each, and the recap lists every host', async () => {
    // Naps long enough that hosts overlap even when the machine is busy and sessions start slowly.
    const r = await runWave('parallel', ['-p', 'nap=4']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/STEP work: timed work, once per wave\n( {2}changed +n\d .*\n){4}/);
    for (const name of NAMES) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name} +ok=0 changed=3 skipped=0 failed=0 unreachable=0$`, 'm'));
      expect(await readFile(join(root(name), 'parallel', 'node.conf'), 'utf8')).toBe(`# fanout node ${name} (${HOSTS[name]}), wave parallel\n`);
      expect((await stat(join(root(name), 'parallel', 'node.conf'))).mode & 0o777).toBe(0o640);
      expect((await stat(join(root(name), 'parallel'))).mode & 0o777).toBe(0o750);
    }
    // Default forks (10): all four hosts slept at the same time.
    expect(maxConcurrent(await stamps('parallel'))).toBe(4);
    expect(r.connections).toEqual(ONE_EACH);
    expect(await sessionsLeft(sshd)).toEqual([]);
  });

  it('reports no change anywhere on the second run', async () => {
    const r = await runWave('parallel', ['--output', 'json']);
    expect(r.exitCode).toBe(0);
    const events = jsonEvents(r.stdout);
    const unchanged = ['dir=ok', 'conf=ok', 'work=ok'];
    expect(resultsByHost(events)).toEqual({ n1: unchanged, n2: unchanged, n3: unchanged, n4: unchanged });
    const recap = events.at(-1)!.recap!;
    expect(Object.keys(recap).sort()).toEqual([...NAMES]);
    for (const name of NAMES) expect(recap[name]).toEqual({ ok: 3, changed: 0, skipped: 0, failed: 0, unreachable: 0 });
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('--forks 1 works on one host at a time', async () => {
    const r = await runWave('forks1', ['-p', 'nap=1', '--forks', '1', '--output', 'json']);
    expect(r.exitCode).toBe(0);
    const host = await stamps('forks1');
    expect(maxConcurrent(host)).toBe(1);
    // In inventory order, each host starting after the previous one ended.
    const byStart = [...host].sort((a, b) => a.start - b.start);
    expect(byStart.map((i) => i.host)).toEqual(NAMES);
    for (let i = 1; i < byStart.length; i++) expect(byStart[i]!.start).toBeGreaterThanOrEqual(byStart[i - 1]!.end);
    expect(r.connections).toEqual(ONE_EACH);
  });

  it('--forks 3 works on at most three hosts at a time', async () => {
    const r = await runWave('forks3', ['-p', 'nap=4', '--forks', '3', '--output', 'json']);
    expect(r.exitCode).toBe(0);
    const host = await stamps('forks3');
    expect(maxConcurrent(host)).toBe(3);
    // The fourth host started only once one of the first three had finished.
    const byStart = [...host].sort((a, b) => a.start - b.start);
    expect(byStart[3]!.start).toBeGreaterThanOrEqual(Math.min(...byStart.slice(0, 3).map((i) => i.end)));
    expect(resultsByHost(jsonEvents(r.stdout)).n4).toEqual(['dir=changed', 'conf=changed', 'work=changed']);
    expect(r.connections).toEqual(ONE_EACH);
  });
});
