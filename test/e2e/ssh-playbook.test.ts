/**
 * The foundation playbook (the one the local suite runs) through the real CLI over a real sshd,
 * against a real PostgreSQL 15 cluster: same results as locally, idempotent, one SSH connection
 * for the whole run, closed at the end. Then hostile param values through argv, env and a template.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, stopAllClusters, type Cluster } from '../support/cluster.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import {
  FIXTURES,
  connectionsPerAddress,
  jsonEvents,
  logCount,
  logSince,
  pgplay,
  postgresOwnedDir,
  resultsByHost,
  sessionsLeft,
  writeInventory,
} from './fixtures/ssh/support.js';

const FOUNDATION = resolve('test/e2e/fixtures/foundation/playbook.yml');
const HOSTILE = join(FIXTURES, 'hostile.yml');

let sshd: Sshd;
let cluster: Cluster;
let dir: string;
let stateDir: string;
let inventory: string;
let postgresUid: number;

beforeAll(async () => {
  sshd = await startSshd({ addresses: ['127.0.0.2', '127.0.0.3'] });
  cluster = await startCluster({ port: 27010, auth: 'peer' });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-ssh-playbook-'));
  stateDir = join(dir, 'state');
  postgresUid = Number((await execa('id', ['-u', 'postgres'])).stdout);
  inventory = await writeInventory(join(dir, 'inventory.yml'), {
    cluster: 'foundation-ssh',
    sshd,
    connection: { become: 'postgres' },
    postgres: ['version: 15', `bindir: ${cluster.bindir}`, `port: ${cluster.port}`, `socketDir: ${cluster.socketDir}`],
    hosts: { db1: { address: '127.0.0.2', extra: `role: primary, pgdata: ${cluster.pgdata}` } },
    vars: '{ work_mem: 8MB }',
  });
});

afterAll(async () => {
  await stopAllClusters();
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the foundation playbook over SSH on a real PostgreSQL 15 cluster', () => {
  it('converges on the first run with one connection, closed at the end', async () => {
    const mark = sshd.logs().length;
    const first = await pgplay(['run', FOUNDATION, '-i', inventory, '--output', 'json'], stateDir);
    expect(first.stderr).toBe('');
    expect(first.exitCode).toBe(0);
    // The same step results as the local suite: the transport changes nothing about what runs.
    expect(resultsByHost(jsonEvents(first.stdout))).toEqual({
      db1: [
        'conf-dir=changed',
        'include-dir=changed',
        'settings=changed',
        'table=changed',
        'row=changed',
        'count=ok',
        'check=ok',
        'reload=changed',
      ],
    });

    const conf = join(cluster.pgdata, 'conf.d', 'pgplay.conf');
    expect(await readFile(conf, 'utf8')).toBe("# Managed by pgplay (foundation-ssh); changes here are overwritten.\nwork_mem = '8MB'\napplication_name = 'db1'\n");
    const st = await stat(conf);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(postgresUid);
    expect((await stat(join(cluster.pgdata, 'conf.d'))).mode & 0o777).toBe(0o700);
    expect(await cluster.psql('SHOW work_mem')).toBe('8MB');
    expect(await cluster.psql('SELECT label FROM drill_marker')).toBe('first-light');

    // Facts, files, commands, SQL and the handler all shared one connection, which pgplay closed
    // itself (a disconnect sshd received, not a dropped socket), and no session process is left.
    const log = logSince(sshd, mark);
    expect(connectionsPerAddress(log, sshd.port)).toEqual({ '127.0.0.2': 1 });
    expect(log.match(/Accepted publickey for root/g)).toHaveLength(1);
    expect(await sessionsLeft(sshd)).toEqual([]);
    expect(await logCount(sshd, mark, /Received disconnect from/, 1)).toBe(1);
  });

  it('reports zero changes on the second run, again over one connection', async () => {
    const mark = sshd.logs().length;
    const second = await pgplay(['run', FOUNDATION, '-i', inventory, '--output', 'json'], stateDir);
    expect(second.exitCode).toBe(0);
    const events = jsonEvents(second.stdout);
    expect(resultsByHost(events)).toEqual({
      db1: ['conf-dir=ok', 'include-dir=ok', 'settings=ok', 'table=ok', 'row=ok', 'count=ok', 'check=ok'],
    });
    expect(events.at(-1)!.recap!.db1).toEqual({ ok: 7, changed: 0, skipped: 0, failed: 0, unreachable: 0 });
    expect(await cluster.psql('SELECT count(*) FROM drill_marker')).toBe('1');
    expect(connectionsPerAddress(logSince(sshd, mark), sshd.port)).toEqual({ '127.0.0.2': 1 });
    expect(await sessionsLeft(sshd)).toEqual([]);
  });

  it('plans a drift over SSH without changing anything', async () => {
    const plan = await pgplay(['plan', FOUNDATION, '-i', inventory, '-p', 'marker=second'], stateDir);
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toMatch(/STEP row: the marker row exists\n {2}changed +db1/);
    expect(await cluster.psql('SELECT count(*) FROM drill_marker')).toBe('1');
  });
});

describe('hostile param values over SSH', () => {
  const tag = randomBytes(4).toString('hex');
  const marker = (what: string) => join(tmpdir(), `pgplay-hostile-${tag}-${what}`);
  // Everything a shell would act on: quotes of both kinds, command substitution, backticks,
  // separators, redirections, globs, variables, a newline and a backslash.
  const value =
    `it's "quoted" $(touch ${marker('dollar')}) \`touch ${marker('tick')}\`; touch ${marker('semi')} && touch ${marker('and')}\n` +
    `| touch ${marker('pipe')} > ${marker('redirect')} * ? ~ $HOME \${IFS} \\ '\\'' {{host.name}} end`;

  it('arrive byte-identical in argv, env and a template, and nothing runs that the playbook did not ask for', async () => {
    const out = await postgresOwnedDir('pgplay-hostile-out-');
    try {
      const hostileInventory = await writeInventory(join(dir, 'hostile-inventory.yml'), {
        cluster: 'hostile-ssh',
        sshd,
        connection: { become: 'postgres' },
        hosts: {
          h2: { address: '127.0.0.2', extra: `role: primary, pgdata: ${join(out, 'no-cluster-here')}` },
          h3: { address: '127.0.0.3', extra: 'role: repository' },
        },
      });
      const r = await pgplay(['run', HOSTILE, '-i', hostileInventory, '-p', `value=${value}`, '-p', `out=${out}`, '--output', 'json'], stateDir);
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      const expected = ['echo=ok', 'same=ok', 'argv-file=changed', 'env-file=changed', 'template=changed'];
      expect(resultsByHost(jsonEvents(r.stdout))).toEqual({ h2: expected, h3: expected });

      for (const host of ['h2', 'h3']) {
        expect(await readFile(join(out, `${host}-argv.txt`), 'utf8')).toBe(value);
        expect(await readFile(join(out, `${host}-env.txt`), 'utf8')).toBe(value);
        // Rendered once: the value's own {{host.name}} stays literal text.
        expect(await readFile(join(out, `${host}-template.txt`), 'utf8')).toBe(`${value}\n`);
        const st = await stat(join(out, `${host}-template.txt`));
        expect(st.uid).toBe(postgresUid);
        expect(st.mode & 0o777).toBe(0o640);
      }
      for (const what of ['dollar', 'tick', 'semi', 'and', 'pipe', 'redirect']) expect(existsSync(marker(what)), marker(what)).toBe(false);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
