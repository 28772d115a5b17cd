/**
 * The bundle's V8 code cache (src/cli/compile-cache.ts): a run writes a cache for each chunk it compiled,
 * the next run compiles from them, a cache V8 rejects or whose bytecode changed on disk is written again,
 * and nothing that is not the user's own alone is ever used (its bytecode would run as whoever runs pgplay).
 */
import { execa } from 'execa';
import { chmod, chown, cp, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheFile } from '../../src/cli/compile-cache.js';
import { CLI, cliLimits, runCli } from '../support/cli.js';
import { jsonEvents, resultsByHost } from './fixtures/ssh/support.js';

const PLAYBOOK = `name: compile-cache
steps:
  - id: one
    name: one command
    hosts: all
    command: { argv: ["true"] }
`;

let dir: string;
let playbook: string;
let inventory: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-compile-cache-'));
  playbook = join(dir, 'playbook.yml');
  await writeFile(playbook, PLAYBOOK);
  inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    ['cluster: compile-cache', 'postgres: { version: 15 }', 'connection: { transport: local }', 'hosts:', `  here: { address: 127.0.0.1, role: primary, pgdata: ${join(dir, 'no-pgdata')} }`, ''].join('\n'),
  );
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

let runs = 0;

/**
 * A one-step local run with its caches in `cache` (PGPLAY_COMPILE_CACHE); it must succeed either way. Each
 * in a state directory of its own, so that each loads the same chunks (none finds its files in the parse
 * cache, which spares a run the YAML library).
 */
async function run(cache: string, env: Record<string, string> = {}): Promise<void> {
  const stateDir = join(dir, `state-${++runs}`);
  const r = await runCli(['run', playbook, '-i', inventory, '--output', 'json', '--state-dir', stateDir], { env: { ...env, PGPLAY_COMPILE_CACHE: cache }, cwd: dir });
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(resultsByHost(jsonEvents(r.stdout))).toEqual({ here: ['one=changed'] });
}

/** The cache files under `cache` (one directory per node version and architecture) with their mode and modification time. */
async function entries(cache: string): Promise<Map<string, { mode: number; mtimeMs: number; bytes: Buffer }>> {
  const out = new Map<string, { mode: number; mtimeMs: number; bytes: Buffer }>();
  for (const sub of await readdir(cache).catch(() => [])) {
    for (const name of await readdir(join(cache, sub))) {
      const path = join(cache, sub, name);
      const s = await stat(path);
      out.set(path, { mode: s.mode & 0o777, mtimeMs: s.mtimeMs, bytes: await readFile(path) });
    }
  }
  return out;
}

describe('the V8 code cache of the bundle', () => {
  it('is written by a run, read by the next one, and written again where V8 rejects it', async () => {
    const cache = join(dir, 'cache');
    await run(cache);
    const first = await entries(cache);
    // The chunks a run loads after the CLI's entry: dozens; each cache the user's alone, none half-written.
    expect(first.size).toBeGreaterThan(20);
    expect([...first.keys()].filter((f) => !f.endsWith('.v8'))).toEqual([]);
    expect([...new Set([...first.values()].map((e) => e.mode.toString(8)))]).toEqual(['600']);
    const [sub] = await readdir(cache);
    expect(sub).toMatch(new RegExp(`^${process.version}-${process.arch}-[0-9a-f]{8}$`));
    expect(((await stat(join(cache, sub!))).mode & 0o777).toString(8)).toBe('700');

    // Every cache was accepted: none written again.
    await run(cache);
    const second = await entries(cache);
    expect([...second.keys()].sort()).toEqual([...first.keys()].sort());
    expect([...second].filter(([f, e]) => e.mtimeMs !== first.get(f)!.mtimeMs).map(([f]) => f)).toEqual([]);

    // Caches V8 cannot take (not its format): the run compiles the sources, and writes them whole again.
    for (const f of first.keys()) await writeFile(f, 'not a code cache');
    await run(cache);
    const third = await entries(cache);
    expect([...third.keys()].sort()).toEqual([...first.keys()].sort());
    expect([...third].filter(([, e]) => e.bytes.toString() === 'not a code cache').map(([f]) => f)).toEqual([]);

    // One bit of each cache's bytecode flipped on disk: V8 checks only a cache's header and would run it
    // (and crash, or worse); the cache's own hash refuses it, and the run writes it again.
    const flipped = new Map<string, Buffer>();
    for (const [f, e] of third) {
      const bytes = Buffer.from(e.bytes);
      bytes[bytes.length - 9]! ^= 0x10;
      flipped.set(f, bytes);
      await writeFile(f, bytes);
    }
    await run(cache);
    const fourth = await entries(cache);
    expect([...fourth].filter(([f, e]) => e.bytes.equals(flipped.get(f)!)).map(([f]) => f)).toEqual([]);
  });

  it('uses no cache that is a link, or another user\'s, and no directory under another user\'s', async () => {
    const cache = join(dir, 'cache-links');
    await run(cache);
    const [one, two, ...rest] = [...(await entries(cache)).keys()];
    expect(rest.length).toBeGreaterThan(10);
    // A link (to a cache that is sound) and a file of another user's: neither is read, both are written anew.
    await rename(one!, `${one}.kept`);
    await symlink(`${one}.kept`, one!);
    await chown(two!, 54321, 54321);
    await run(cache);
    expect((await lstat(one!)).isSymbolicLink()).toBe(false);
    expect((await stat(two!)).uid).toBe(process.getuid!());

    // A cache directory inside a directory of another user's (who could swap what is under it): not used,
    // nor made (a root run with a user's HOME must leave nothing of root's there).
    const theirs = join(dir, 'theirs');
    await mkdir(theirs, { mode: 0o755 });
    await chown(theirs, 54321, 54321);
    await run(join(theirs, 'cache'));
    expect(await readdir(theirs)).toEqual([]);
  });

  it('is not used in a directory others may write to, nor when off, nor at a relative path', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    await run(shared);
    expect((await entries(shared)).size).toBe(0);
    // Each run's working directory is `dir`: neither setting may make a directory there.
    const before = await readdir(dir);
    await run('off');
    await run('relative-cache');
    expect((await readdir(dir)).filter((f) => !before.includes(f) && !f.startsWith('state-'))).toEqual([]);
  });

  it('lets pgplay start where no home directory can be found (a uid without a passwd entry, no HOME)', async () => {
    // The bundle and package.json copied where that uid can read them (the checkout may be under a 0700 home).
    const pkg = join(dir, 'pkg');
    await cp(dirname(CLI), join(pkg, 'dist', 'bundle'), { recursive: true });
    await cp('package.json', join(pkg, 'package.json'));
    for (const d of [dir, pkg, join(pkg, 'dist')]) await chmod(d, 0o755);
    const cli = join(pkg, 'dist', 'bundle', 'main.js');
    const r = await execa('setpriv', ['--reuid=54321', '--regid=54321', '--clear-groups', 'env', '-u', 'HOME', '-u', 'PGPLAY_COMPILE_CACHE', process.execPath, cli, '--version'], { reject: false, cwd: '/', ...cliLimits() });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^pgplay \d+\.\d+\.\d+$/);
    expect(r.exitCode).toBe(0);
  });

  it("requires a chunk's siblings without node's resolution, and loads the same modules as without the cache", async () => {
    // Preloaded into the run: counts node's resolutions of a dist/ file's `./name.js` (how the chunks ask
    // for each other), all of them and those after the cache's hook is in (Module.prototype._compile
    // replaced) from a module other than the entry (whose own require() is node's), and lists the modules
    // of dist/ it loaded, as it exits.
    const dist = await realpath(join(dirname(CLI), '..'));
    const hook = join(dir, 'count-resolutions.cjs');
    await writeFile(
      hook,
      `const Module = require('node:module');
const { writeFileSync } = require('node:fs');
const dist = ${JSON.stringify(dist + '/')};
const entry = ${JSON.stringify(join(dist, 'bundle', 'main.js'))};
const compile = Module.prototype._compile;
const resolve = Module._resolveFilename;
let siblings = 0;
let hooked = 0;
Module._resolveFilename = function (request, parent, ...rest) {
  if (parent && parent.filename && parent.filename.startsWith(dist) && /^\\.\\/[^/]+\\.c?js$/.test(request)) {
    siblings += 1;
    if (Module.prototype._compile !== compile && parent.filename !== entry) hooked += 1;
  }
  return resolve.call(this, request, parent, ...rest);
};
process.on('exit', () => writeFileSync(process.env.COUNT_LOG, JSON.stringify({ siblings, hooked, modules: Object.keys(Module._cache).filter((f) => f.startsWith(dist)).sort() })));
`,
    );
    type Counts = { siblings: number; hooked: number; modules: string[] };
    const counted = async (cache: string): Promise<Counts> => {
      const log = join(dir, `count-${runs + 1}.json`);
      await run(cache, { NODE_OPTIONS: `--require ${hook}`, COUNT_LOG: log });
      return JSON.parse(await readFile(log, 'utf8')) as Counts;
    };
    const cache = join(dir, 'cache-siblings');
    const cold = await counted(cache);
    const warm = await counted(cache);
    const off = await counted('off');
    // Without the cache node resolves every one of them (dozens: the count sees them).
    expect(off.siblings).toBeGreaterThan(50);
    expect(off.modules.length).toBeGreaterThan(30);
    expect(cold.hooked).toBe(0);
    expect(warm.hooked).toBe(0);
    expect(cold.siblings).toBeLessThan(off.siblings / 4);
    expect(cold.modules).toEqual(off.modules);
    expect(warm.modules).toEqual(off.modules);
  });

  it('finds a file\'s cache by its content, not its length (V8 checks only that)', () => {
    expect(cacheFile('/c', 'exports.a = 1;')).not.toBe(cacheFile('/c', 'exports.a = 2;'));
    expect(cacheFile('/c', 'exports.a = 1;')).toBe(cacheFile('/c', 'exports.a = 1;'));
  });
});
