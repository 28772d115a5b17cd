/**
 * The `pgplay` command as npm installs it: bin/pgplay, reached through a symlink (node_modules/.bin),
 * runs the bundle with node. NODE_EXTRA_CA_CERTS is read by node as it starts (tens of milliseconds for a
 * CA bundle pgplay never uses), so the bin keeps it from node and pgplay hands it back to the commands it
 * starts. Seen from outside: node warns at start-up when that file cannot be read, and a command step
 * prints the variable it was given. The bin also runs node with V8's garbage collector on node's own
 * thread (--single-threaded-gc): a command step reads the command line of the node that started it.
 * The process ends itself once its output has left (src/cli/exit.ts): a reader that reads late still
 * gets all of it.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliLimits } from '../support/cli.js';

const BIN = resolve('bin/pgplay');
/** What node says at start-up when NODE_EXTRA_CA_CERTS names a file it cannot load. */
const NODE_CA_WARNING = /Ignoring extra certs from/;

let dir: string;
let inventory: string;
let playbook: string;
let seen: string;
let parent: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-bin-'));
  inventory = join(dir, 'inventory.yml');
  playbook = join(dir, 'playbook.yml');
  seen = join(dir, 'seen');
  parent = join(dir, 'parent');
  await writeFile(
    inventory,
    `cluster: bin\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg1 }\n`,
  );
  // What the step's command was given: the variable, and whether pgplay's own hand-over name leaked.
  await writeFile(
    playbook,
    `name: bin\nsteps:\n  - id: env\n    hosts: db1\n    command:\n      argv: [sh, -c, 'printf "%s|%s" "\${NODE_EXTRA_CA_CERTS-unset}" "\${PGPLAY_NODE_EXTRA_CA_CERTS-unset}" > ${seen}; tr "\\\\0" "\\\\n" < /proc/$PPID/cmdline > ${parent}']\n`,
  );
  // As npm links it: node_modules/.bin/pgplay -> ../pgplay/bin/pgplay.
  await symlink(BIN, join(dir, 'pgplay'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], env: Record<string, string | undefined>) {
  return execa(argv[0]!, [...argv.slice(1), 'run', playbook, '-i', inventory, '--state-dir', join(dir, 'state'), '--yes'], {
    reject: false,
    env: { CI: 'true', ...env },
    extendEnv: true,
    ...cliLimits(),
  });
}

describe('the pgplay bin', () => {
  it('node does not load NODE_EXTRA_CA_CERTS; every command pgplay starts is given it unchanged', async () => {
    const ca = join(dir, 'no-such-ca.pem');
    // Run as node runs the bundle itself, node reads the file at start-up (and warns that it cannot):
    // the proof that the warning is what to look for.
    const direct = await run(['node', CLI], { NODE_EXTRA_CA_CERTS: ca });
    expect(direct.exitCode).toBe(0);
    expect(direct.stderr).toMatch(NODE_CA_WARNING);
    expect(await readFile(seen, 'utf8')).toBe(`${ca}|unset`);

    const viaBin = await run([join(dir, 'pgplay')], { NODE_EXTRA_CA_CERTS: ca });
    expect(viaBin.stderr).not.toMatch(NODE_CA_WARNING);
    expect(viaBin.exitCode).toBe(0);
    expect(viaBin.stdout).toMatch(/RECAP/);
    expect(await readFile(seen, 'utf8')).toBe(`${ca}|unset`);
  });

  it('runs node with the garbage collector on its own thread, the bundle next', async () => {
    const direct = await run(['node', CLI], {});
    expect(direct.exitCode).toBe(0);
    // The step's shell is node's own child: the proof that the command line read is pgplay's node.
    const directArgv = (await readFile(parent, 'utf8')).split('\n');
    expect(directArgv.slice(0, 2)).toEqual(['node', CLI]);

    const viaBin = await run([join(dir, 'pgplay')], {});
    expect(viaBin.exitCode).toBe(0);
    const argv = (await readFile(parent, 'utf8')).split('\n');
    expect(argv[0]).toBe('node');
    expect(argv[1]).toBe('--single-threaded-gc');
    expect(resolve(argv[2]!)).toBe(resolve('dist/bundle/main.js'));
    expect(argv.slice(3, 5)).toEqual(['run', playbook]);
  });

  it('ends its process once its output has left: a pipe read late gets all of it, and the exit code is the command\'s', async () => {
    // 257 KB of JSON through a pipe nobody reads for a while: node writes to a pipe asynchronously, and an
    // exit that did not wait for it would leave the reader the first 64 KB.
    const late = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((done, fail) => {
        const child = spawn(join(dir, 'pgplay'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.pause();
        setTimeout(() => child.stdout.on('data', (b: Buffer) => out.push(b)).resume(), 500);
        child.stderr.on('data', (b: Buffer) => err.push(b));
        child.once('error', fail);
        child.once('close', (code) => done({ code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() }));
      });
    const schema = await late(['schema', 'playbook']);
    expect(schema.code).toBe(0);
    expect(schema.out.length).toBeGreaterThan(200_000);
    expect((JSON.parse(schema.out) as { $id: string }).$id).toMatch(/playbook\.schema\.json$/);
    const refused = await late(['schema', 'nonsense']);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/schema expects playbook or inventory/);
  });

  it('without the variable, the commands are not given one (an empty one stays empty)', async () => {
    const unset = await run([join(dir, 'pgplay')], { NODE_EXTRA_CA_CERTS: undefined });
    expect(unset.exitCode).toBe(0);
    expect(await readFile(seen, 'utf8')).toBe('unset|unset');
    const empty = await run([join(dir, 'pgplay')], { NODE_EXTRA_CA_CERTS: '' });
    expect(empty.exitCode).toBe(0);
    expect(await readFile(seen, 'utf8')).toBe('|unset');
  });
});
