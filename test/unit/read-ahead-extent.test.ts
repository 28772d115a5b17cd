/**
 * Changes of known extent (a file written whole, a new directory) drop only the read-ahead answers they
 * can make untrue, on every host: the rest is still answered without a command, and still true. The
 * read-ahead script and the write run for real through sh on this machine (as over SSH).
 */
import { mkdir, rm, stat as fsStat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import type { ExecOptions, ExecResult, FileStat, ReadOptions } from '../../src/transports/types.js';
import { LocalTransport } from '../../src/transports/local.js';
import { readAheadPaths } from '../../src/transports/read-ahead.js';
import { ReadAheadCache, ReadAheadTransport } from '../../src/transports/read-ahead-cache.js';
import { localHost, tempDir } from './support/action-context.js';

/** The local transport through file commands, counting every command it runs. */
class Counting extends LocalTransport {
  commands = 0;
  constructor(name: string) {
    super(localHost({ name }), { fileAccess: 'commands' });
  }
  override exec(argv: string[], options?: ExecOptions): Promise<ExecResult> {
    this.commands++;
    return super.exec(argv, options);
  }
  override stat(path: string, options?: ReadOptions): Promise<FileStat> {
    this.commands++;
    return super.stat(path, options);
  }
}

let dir: { path: string; cleanup(): Promise<void> };
let t: string;
const inners: Counting[] = [];
/** The directory and its alias (a link beside it, outside the directory). */
async function removeDir(): Promise<void> {
  if (alias) await rm(alias, { force: true });
  await dir?.cleanup();
}

afterAll(async () => {
  for (const i of inners) await i.close();
  await removeDir();
});

let cache: ReadAheadCache;
let h1: ReadAheadTransport;
let h2: ReadAheadTransport;
let alias: string;

beforeEach(async () => {
  await removeDir();
  dir = await tempDir('read-ahead-extent');
  t = dir.path;
  await writeFile(join(t, 'a.conf'), 'a\n');
  await mkdir(join(t, 'sub'));
  await writeFile(join(t, 'sub', 'c.conf'), 'c\n');
  await symlink(join(t, 'a.conf'), join(t, 'link'));
  // A second inventory host on the same machine, which reaches the same directory through a link.
  alias = `${t}-alias`;
  await symlink(t, alias);
  cache = new ReadAheadCache();
  const [i1, i2] = [new Counting('h1'), new Counting('h2')];
  inners.push(i1, i2);
  h1 = new ReadAheadTransport(i1, cache);
  h2 = new ReadAheadTransport(i2, cache);
});

const h1Paths = () => ['a.conf', 'b.conf', 'sub', 'sub/c.conf', 'new', 'new/x', 'new/x/y', 'other', 'link'].map((p) => join(t, p)).concat([t]);
const h2Paths = () => [join(alias, 'b.conf'), join(alias, 'a.conf'), join(alias, 'other'), join(alias, 'new/x/y')];

async function readAhead(): Promise<void> {
  for (const [host, paths] of [
    [h1, h1Paths()],
    [h2, h2Paths()],
  ] as const) {
    const token = cache.begin(host.hostName);
    cache.store(host.hostName, undefined, token, await readAheadPaths(host.inner, paths));
  }
}

/** Which paths each host still answers from what it read ahead (no command), checked against the truth. */
async function answeredWithoutCommand(host: ReadAheadTransport, paths: string[]): Promise<string[]> {
  const kept: string[] = [];
  for (const path of paths) {
    const inner = host.inner as Counting;
    const before = inner.commands;
    const answer = await host.stat(path);
    if (inner.commands !== before) continue;
    kept.push(path.replace(`${t}-alias`, '@alias').replace(t, '@'));
    // What is kept is true: the same as the transport's own stat now.
    expect(answer, path).toEqual(await inner.stat(path));
  }
  return kept;
}

describe('read-ahead after a change of known extent', () => {
  it('a file written whole drops its own place (on every host), its directory and links; nothing else', async () => {
    await readAhead();
    await h1.writeFile(join(t, 'b.conf'), 'b\n', { mode: 0o640 });
    expect((await fsStat(join(t, 'b.conf'))).mode & 0o777).toBe(0o640);
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual(['@/a.conf', '@/sub', '@/sub/c.conf', '@/new', '@/new/x', '@/new/x/y', '@/other']);
    // h2 reached b.conf through the alias: the same place, so it is dropped there too.
    expect(await answeredWithoutCommand(h2, h2Paths())).toEqual(['@alias/a.conf', '@alias/other', '@alias/new/x/y']);
  });

  it('a new directory drops every place on or below its first missing component and its parent; nothing else', async () => {
    await readAhead();
    await h1.exec(['mkdir', '-p', '--', join(t, 'new/x')], { createsDirectory: join(t, 'new/x') });
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual(['@/a.conf', '@/b.conf', '@/sub', '@/sub/c.conf', '@/other']);
    expect(await answeredWithoutCommand(h2, h2Paths())).toEqual(['@alias/b.conf', '@alias/a.conf', '@alias/other']);
  });

  it('a change whose extent is unknown (any other command, a write through a link) drops everything of that host', async () => {
    await readAhead();
    await h1.writeFile(join(t, 'link'), 'through the link\n');
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual([]);
    await readAhead();
    await h1.exec(['true']);
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual([]);
    // An existing directory's mode changes what is below it: not a change of known extent.
    await readAhead();
    await h1.exec(['chmod', '0700', '--', join(t, 'sub')], { createsDirectory: join(t, 'sub') });
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual([]);
    // The step that made such a change ends every host's answers.
    cache.stepFinished();
    expect(await answeredWithoutCommand(h2, h2Paths())).toEqual([]);
    expect(cache.lastStepChanged).toBe(true);
  });

  it('a step whose changes were all of known extent keeps the rest for the next steps', async () => {
    await readAhead();
    await h1.exec(['mkdir', '-p', '--', join(t, 'new/x')], { createsDirectory: join(t, 'new/x') });
    await h2.writeFile(join(alias, 'b.conf'), 'b\n');
    cache.stepFinished();
    expect(cache.lastStepChanged).toBe(false);
    expect(await answeredWithoutCommand(h1, h1Paths())).toEqual(['@/a.conf', '@/sub', '@/sub/c.conf', '@/other']);
    // A file that was not read ahead has no known place: writing it is a change of unknown extent.
    await h1.writeFile(join(t, 'sub', 'd.conf'), 'd\n');
    cache.stepFinished();
    expect(cache.lastStepChanged).toBe(true);
    expect(await answeredWithoutCommand(h2, h2Paths())).toEqual([]);
  });

  it('a fetch under way during such a change does not store what the change may have made untrue', async () => {
    await readAhead();
    const token = cache.begin('h2');
    const readBefore = await readAheadPaths(h2.inner, h2Paths());
    await h1.writeFile(join(t, 'b.conf'), 'b\n');
    cache.store('h2', undefined, token, readBefore);
    // b.conf as read before the write (missing) is not stored; the rest is, and is true.
    expect(await answeredWithoutCommand(h2, h2Paths())).toEqual(['@alias/a.conf', '@alias/other', '@alias/new/x/y']);
  });
});
