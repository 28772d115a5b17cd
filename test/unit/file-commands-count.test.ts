import { chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileAction, type FileInput } from '../../src/actions/file.js';
import { LocalTransport } from '../../src/transports/local.js';
import type { ExecOptions, ExecResult } from '../../src/transports/types.js';
import { localHost, tempDir, testContext } from './support/action-context.js';

/** The real local transport, recording every command it runs. */
class CountingTransport extends LocalTransport {
  readonly commands: string[][] = [];
  override exec(argv: string[], options?: ExecOptions): Promise<ExecResult> {
    this.commands.push(argv);
    return super.exec(argv, options);
  }
}

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir('file-commands');
  await chown(dir.path, 0, 0);
});
afterAll(() => dir.cleanup());

async function apply(input: FileInput): Promise<string[][]> {
  const transport = new CountingTransport(localHost());
  const ctx = testContext({ transport });
  const planned = await fileAction.check(ctx, input);
  expect(planned.changed).toBe(true);
  const before = transport.commands.length;
  await fileAction.apply(ctx, input, planned);
  // What apply changes, after the reads its own plan makes (stat is no command on the local transport).
  return transport.commands.slice(before);
}

describe('a directory is one command', () => {
  it('a new directory with mode, owner and group: one command, parents included', async () => {
    const path = join(dir.path, 'new', 'nested', 'drill');
    const commands = await apply({ path, state: 'directory', mode: '0750', owner: 'postgres', group: 'postgres' });
    expect(commands).toHaveLength(1);
    const st = await stat(path);
    expect([st.isDirectory(), (st.mode & 0o7777).toString(8), st.uid, st.gid]).toEqual([true, '750', 101, 104]);
    // Parents as mkdir -p makes them: owned by whoever ran it (root here), mode from the umask.
    const parent = await stat(join(dir.path, 'new', 'nested'));
    expect([parent.isDirectory(), parent.uid]).toEqual([true, 0]);
  });

  it('an existing directory whose owner and mode differ: one command', async () => {
    const path = join(dir.path, 'existing');
    await mkdir(path, { mode: 0o755 });
    const commands = await apply({ path, state: 'directory', mode: '0700', owner: 'postgres', group: 'postgres' });
    expect(commands).toHaveLength(1);
    const st = await stat(path);
    expect([(st.mode & 0o7777).toString(8), st.uid, st.gid]).toEqual(['700', 101, 104]);
  });
});

describe('removal', () => {
  it('of a path that is not there probes nothing: no server can be in what does not exist', async () => {
    const transport = new CountingTransport(localHost());
    const ctx = testContext({ transport });
    const outcome = await fileAction.check(ctx, { path: join(dir.path, 'never-made'), state: 'absent' });
    expect(outcome.changed).toBe(false);
    expect(transport.commands).toEqual([]);
  });

  /*
   * A directory's removal is examined in check (whose PGDATA, which cluster, a server running there, empty
   * or not): apply of the same attempt removes what check examined and guarded (ctx.checkReads), as a
   * stop and a restore do, instead of running the identity reads on every host again; when a human was
   * asked in between (the engine empties checkReads) it examines the directory afresh.
   */
  async function scratch(name: string): Promise<string> {
    const path = join(dir.path, name);
    await mkdir(path);
    await writeFile(join(path, 'left-over'), 'x');
    return path;
  }

  it('of a directory: apply removes what check examined, without examining it again', async () => {
    const path = await scratch('examined-once');
    const transport = new CountingTransport(localHost());
    const ctx = { ...testContext({ transport }), checkReads: new Map<string, unknown>() };
    const input: FileInput = { path, state: 'absent', force: true };
    const planned = await fileAction.check(ctx, input);
    expect(planned.changed).toBe(true);
    const before = transport.commands.length;
    expect(before).toBeGreaterThan(0);
    await fileAction.apply(ctx, input, planned);
    expect(transport.commands.slice(before)).toEqual([['rm', '-rf', '--', path]]);
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('of a directory, when a human was asked in between (checkReads emptied): apply examines it again', async () => {
    const path = await scratch('examined-twice');
    const transport = new CountingTransport(localHost());
    const ctx = { ...testContext({ transport }), checkReads: new Map<string, unknown>() };
    const input: FileInput = { path, state: 'absent', force: true };
    const planned = await fileAction.check(ctx, input);
    const examined = transport.commands.length;
    ctx.checkReads.clear();
    await fileAction.apply(ctx, input, planned);
    expect(transport.commands.slice(examined, examined * 2)).toEqual(transport.commands.slice(0, examined));
    expect(transport.commands.slice(examined * 2)).toEqual([['rm', '-rf', '--', path]]);
  });
});
