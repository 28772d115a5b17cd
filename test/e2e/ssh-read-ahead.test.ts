/**
 * Read-ahead over a real sshd: the state checks of consecutive file and template steps are fetched in
 * one session per host, and what they fetched is never trusted once something may have changed it:
 * a change by an earlier step on the same host, a change by an earlier step on another inventory host
 * that is the same machine, a change made outside pgplay between runs, and time passing in a retry.
 */
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type Sshd } from '../support/sshd.js';
import { eventually } from './lab-helpers.js';
import { finished, jsonEvents, logSince, pgplay, postgresOwnedDir, resultsByHost, sessionsLeft, spawnPgplay, writeInventory } from './fixtures/ssh/support.js';

const HOSTS = { r1: '127.0.0.2', r2: '127.0.0.3' } as const;
const DIRS = 4;

let sshd: Sshd;
let dir: string;
let stateDir: string;
let inventory: string;
let playbook: string;
let root: string;

/** Sessions (one per command) sshd started, per listen address: it logs the client port with both. */
function sessionsPerAddress(log: string): Record<string, number> {
  const addressOfClientPort = new Map<string, string>();
  for (const m of log.matchAll(new RegExp(`Connection from \\S+ port (\\d+) on (\\S+) port ${sshd.port}\\b`, 'g'))) {
    addressOfClientPort.set(m[1]!, m[2]!);
  }
  const out: Record<string, number> = {};
  for (const m of log.matchAll(/Starting session: command for root from \S+ port (\d+)/g)) {
    const address = addressOfClientPort.get(m[1]!) ?? 'unknown';
    out[address] = (out[address] ?? 0) + 1;
  }
  return out;
}

const hostRoot = (host: string) => join(root, host);
const run = (args: string[] = []) => pgplay(['run', playbook, '-i', inventory, '--output', 'json', ...args], stateDir);

beforeAll(async () => {
  sshd = await startSshd({ addresses: Object.values(HOSTS) });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-ssh-read-ahead-'));
  stateDir = join(dir, 'state');
  root = await postgresOwnedDir('pgplay-read-ahead-hosts-');
  inventory = await writeInventory(join(dir, 'inventory.yml'), {
    cluster: 'read-ahead',
    sshd,
    connection: { become: 'postgres' },
    hosts: Object.fromEntries(Object.entries(HOSTS).map(([name, address]) => [name, { address, extra: `${name === 'r1' ? `role: primary, pgdata: ${join(hostRoot(name), 'pgdata')}` : 'role: repository'}, vars: { root: ${hostRoot(name)} }` }])),
  });
  await writeFile(join(dir, 'app.conf.hbs'), '# {{host.name}}: section {{section}}\nlisten = {{host.address}}\n');
  const steps: string[] = [];
  for (let i = 1; i <= DIRS; i++) {
    steps.push(
      `  - { id: dir${i}, hosts: all, file: { path: "{{host.vars.root}}/d${i}", state: directory, mode: "0750" } }`,
      `  - { id: conf${i}, hosts: all, template: { src: app.conf.hbs, dest: "{{host.vars.root}}/d${i}/app.conf", mode: "0640", vars: { section: "${i}" } } }`,
    );
  }
  // A file the template wrote a moment ago, checked on the same host: read ahead missing, it must be read again.
  steps.push(`  - { id: conf-exists, hosts: all, file: { path: "{{host.vars.root}}/d${DIRS}/app.conf", state: file, mode: "0640" } }`);
  // r1 writes into r2's tree; r2 then checks that file: the two hosts are one machine.
  steps.push(
    `  - { id: r1-writes-for-r2, hosts: r1, template: { src: app.conf.hbs, dest: "${hostRoot('r2')}/from-r1.conf", vars: { section: shared } } }`,
    `  - { id: r2-sees-it, hosts: r2, file: { path: "{{host.vars.root}}/from-r1.conf", state: file, mode: "0640" } }`,
  );
  playbook = join(dir, 'converge.yml');
  await writeFile(playbook, ['name: read-ahead', 'steps:', ...steps, ''].join('\n'));
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  if (root) await rm(root, { recursive: true, force: true });
});

describe('read-ahead of state checks over SSH', () => {
  it('first run: a later step sees what an earlier one changed, on its own host and on another host of the same machine', async () => {
    const mark = sshd.logs().length;
    const r = await run();
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const results = resultsByHost(jsonEvents(r.stdout));
    const converge = Array.from({ length: DIRS }, (_, i) => [`dir${i + 1}=changed`, `conf${i + 1}=changed`]).flat();
    expect(results).toEqual({
      r1: [...converge, 'conf-exists=ok', 'r1-writes-for-r2=changed'],
      r2: [...converge, 'conf-exists=ok', 'r2-sees-it=changed'],
    });
    for (const host of Object.keys(HOSTS)) {
      expect((await stat(join(hostRoot(host), 'd3'))).mode & 0o777).toBe(0o750);
      expect(await readFile(join(hostRoot(host), 'd3', 'app.conf'), 'utf8')).toBe(`# ${host}: section 3\nlisten = ${HOSTS[host as keyof typeof HOSTS]}\n`);
      expect((await stat(join(hostRoot(host), 'd3', 'app.conf'))).mode & 0o777).toBe(0o640);
    }
    expect((await stat(join(hostRoot('r2'), 'from-r1.conf'))).mode & 0o777).toBe(0o640);
    // pgplay's own changes (a file written whole, a new directory) leave what was read ahead elsewhere in
    // place (before: 21 and 20 commands per host; now 17: the lock's two on r1, facts, 9 changes and 5 or 7
    // read-aheads). Each user's first three commands take a session of their own, the rest go through one
    // long-lived helper session per user (ssh.ts): 5 sessions per host where each command took one.
    const counted = await eventually(async () => sessionsPerAddress(logSince(sshd, mark)), (c) => c['127.0.0.2'] === 5, 5000);
    expect(counted).toEqual({ '127.0.0.2': 5, '127.0.0.3': 5 });
  });

  it('no-change run: every host checks all its steps with one session besides facts', async () => {
    const mark = sshd.logs().length;
    const r = await run();
    expect(r.exitCode).toBe(0);
    const events = jsonEvents(r.stdout);
    expect(events.at(-1)!.recap).toEqual({
      r1: { ok: 2 * DIRS + 2, changed: 0, skipped: 0, failed: 0, unreachable: 0 },
      r2: { ok: 2 * DIRS + 2, changed: 0, skipped: 0, failed: 0, unreachable: 0 },
    });
    // One session gathers facts, one reads the state of all steps ahead; on r1, the primary, two more take
    // and release the cluster's lock there (and do not make the read-ahead stale).
    // The release is the run's last command: sshd may log its session a moment after pgplay exits.
    const counted = await eventually(async () => sessionsPerAddress(logSince(sshd, mark)), (c) => c['127.0.0.2'] === 4, 5000);
    expect(counted).toEqual({ '127.0.0.2': 4, '127.0.0.3': 2 });
    expect(await sessionsLeft(sshd)).toEqual([]);
  });

  it('plan reads ahead the same way and changes nothing', async () => {
    const mark = sshd.logs().length;
    const r = await pgplay(['plan', playbook, '-i', inventory, '--output', 'json'], stateDir);
    expect(r.exitCode).toBe(0);
    expect(sessionsPerAddress(logSince(sshd, mark))).toEqual({ '127.0.0.2': 2, '127.0.0.3': 2 });
  });

  it('a change made outside pgplay between runs is seen and put right, and only that', async () => {
    await writeFile(join(hostRoot('r1'), 'd2', 'app.conf'), 'edited by hand\n');
    await chmod(join(hostRoot('r2'), 'd4'), 0o700);
    const r = await run();
    expect(r.exitCode).toBe(0);
    const changed = jsonEvents(r.stdout)
      .filter((e) => e.type === 'step-result' && e.status === 'changed')
      .map((e) => `${e.step}@${e.host}`);
    expect(changed).toEqual(['conf2@r1', 'dir4@r2']);
    expect(await readFile(join(hostRoot('r1'), 'd2', 'app.conf'), 'utf8')).toBe('# r1: section 2\nlisten = 127.0.0.2\n');
    expect((await stat(join(hostRoot('r2'), 'd4'))).mode & 0o777).toBe(0o750);
  });

  it('a file that another inventory host on the same machine puts back is seen by the next step', async () => {
    // r2 changes nothing itself in this run, so only the rule "a change anywhere ends every host's read-ahead" makes it look again.
    await rm(join(hostRoot('r2'), 'from-r1.conf'));
    const r = await run();
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    const changed = jsonEvents(r.stdout)
      .filter((e) => e.type === 'step-result' && e.status === 'changed')
      .map((e) => `${e.step}@${e.host}`);
    expect(changed).toEqual(['r1-writes-for-r2@r1', 'r2-sees-it@r2']);
    expect((await stat(join(hostRoot('r2'), 'from-r1.conf'))).mode & 0o777).toBe(0o640);
  });

  it('a retry reads the host again: a file that appears while the step waits is found', async () => {
    const late = join(hostRoot('r1'), 'late.flag');
    const waiting = join(dir, 'waits.yml');
    await writeFile(
      waiting,
      [
        'name: waits',
        'steps:',
        `  - { id: d1, hosts: r1, file: { path: "{{host.vars.root}}/d1", state: directory, mode: "0750" } }`,
        `  - { id: flag, hosts: r1, retries: 20, delay: 250ms, file: { path: "${late}", state: file } }`,
        '',
      ].join('\n'),
    );
    const running = spawnPgplay(['run', waiting, '-i', inventory, '--output', 'json'], stateDir);
    // The file appears only once the step has looked and not found it.
    await new Promise<void>((resolve) => {
      let seen = '';
      running.stdout!.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (/"step":"flag".*attempt 1 failed/.test(seen)) resolve();
      });
    });
    await writeFile(late, '');
    const r = finished(await running);
    expect(r.exitCode).toBe(0);
    const flag = jsonEvents(r.stdout).find((e) => e.type === 'step-result' && e.step === 'flag')!;
    expect(flag.status).toBe('ok');
    expect((flag as { attempts?: number }).attempts).toBeGreaterThan(1);
  });
});
