/**
 * The `pgplay` command as npm installs it: bin/pgplay, reached through a symlink (node_modules/.bin),
 * runs the bundle with node. NODE_EXTRA_CA_CERTS is read by node as it starts (tens of milliseconds for a
 * CA bundle pgplay never uses), so the bin keeps it from node and pgplay hands it back to the commands it
 * starts. Seen from outside: node warns at start-up when that file cannot be read, and a command step
 * prints the variable it was given. The bin also runs node with V8's garbage collector on node's own
 * thread (--single-threaded-gc): a command step reads the command line of the node that started it.
 */
import { execa } from 'execa';
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

  it('without the variable, the commands are not given one (an empty one stays empty)', async () => {
    const unset = await run([join(dir, 'pgplay')], { NODE_EXTRA_CA_CERTS: undefined });
    expect(unset.exitCode).toBe(0);
    expect(await readFile(seen, 'utf8')).toBe('unset|unset');
    const empty = await run([join(dir, 'pgplay')], { NODE_EXTRA_CA_CERTS: '' });
    expect(empty.exitCode).toBe(0);
    expect(await readFile(seen, 'utf8')).toBe('|unset');
  });
});
