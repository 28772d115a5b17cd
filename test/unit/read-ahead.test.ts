/**
 * The read-ahead script, run for real by sh on this machine: its answers must be exactly what the
 * transport's own stat and readFile return for the same paths, or absent.
 */
import { chmod, chown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalTransport } from '../../src/transports/local.js';
import { parseReadAhead, readAheadPaths } from '../../src/transports/read-ahead.js';
import { localHost, tempDir } from './support/action-context.js';

// Files through commands as the become user, as over SSH (as root the local transport would read directly).
const transport = new LocalTransport(localHost({ name: 'db-local' }), { fileAccess: 'commands' });
let dir: { path: string; cleanup(): Promise<void> };
let zoo: string[];

beforeAll(async () => {
  dir = await tempDir('read-ahead');
  const at = (name: string) => join(dir.path, name);
  await chmod(dir.path, 0o755);
  await writeFile(at('plain.conf'), 'port = 5432\n');
  await writeFile(at('no-final-newline'), 'last line');
  await writeFile(at('empty'), '');
  // Bytes that look like the script's own framing must come back untouched.
  await writeFile(at('binary'), Buffer.concat([Buffer.from([0, 255, 10, 13]), Buffer.from(`\npgplay-0123 0\nE\nM\n-\n\n==> ${'/etc/passwd'} <==\n`), Buffer.from([0xc3])]));
  await writeFile(at('name with spaces\nand a newline'), 'odd name\n');
  await writeFile(at('secret'), 'root only\n', { mode: 0o600 });
  await writeFile(at('large'), Buffer.alloc(200 * 1024, 'x'));
  await mkdir(at('conf.d'), { mode: 0o750 });
  await chown(at('conf.d'), 0, 0);
  await symlink('plain.conf', at('link-to-file'));
  await symlink('/nonexistent/target', at('dangling'));
  await symlink('conf.d', at('link-to-dir'));
  zoo = ['plain.conf', 'no-final-newline', 'empty', 'binary', 'name with spaces\nand a newline', 'secret', 'large', 'conf.d', 'link-to-file', 'dangling', 'link-to-dir', 'missing', 'missing-dir/child'].map(at);
});

afterAll(async () => {
  await transport.close();
  await dir.cleanup();
});

async function expectSameAnswers(become: string | undefined): Promise<Map<string, { stat: unknown; content?: Buffer | null }>> {
  const answers = await readAheadPaths(transport, zoo, { become });
  for (const path of zoo) {
    const answer = answers.get(path);
    expect(answer, path).toBeDefined();
    expect(answer!.stat, path).toEqual(await transport.stat(path, { become }));
    if (answer!.content !== undefined) expect(answer!.content, path).toEqual(await transport.readFile(path, { become }));
  }
  return answers;
}

describe('readAheadPaths', () => {
  it('answers stat and readFile for every kind of path exactly as the transport does (as root)', async () => {
    const answers = await expectSameAnswers(undefined);
    const contentOf = (name: string) => answers.get(join(dir.path, name))!.content;
    expect(contentOf('plain.conf')!.toString()).toBe('port = 5432\n');
    expect(contentOf('no-final-newline')!.toString()).toBe('last line');
    expect(contentOf('empty')!.length).toBe(0);
    expect(contentOf('binary')!.subarray(0, 4)).toEqual(Buffer.from([0, 255, 10, 13]));
    expect(contentOf('name with spaces\nand a newline')!.toString()).toBe('odd name\n');
    expect(contentOf('missing')).toBeNull();
    expect(contentOf('missing-dir/child')).toBeNull();
    expect(answers.get(join(dir.path, 'link-to-file'))!.stat).toMatchObject({ type: 'symlink', linkTarget: 'plain.conf' });
    expect(answers.get(join(dir.path, 'dangling'))!.stat).toMatchObject({ type: 'symlink', linkTarget: '/nonexistent/target' });
  });

  it('leaves out what it cannot vouch for: files over the size limit, directories and links are stat only', async () => {
    const answers = await readAheadPaths(transport, zoo);
    for (const name of ['large', 'conf.d', 'link-to-file', 'dangling', 'link-to-dir']) {
      expect(answers.get(join(dir.path, name))!.content, name).toBeUndefined();
    }
    expect(answers.get(join(dir.path, 'large'))!.stat).toMatchObject({ type: 'file', size: 200 * 1024 });
  });

  it('reads as the become user: a file postgres cannot read is stat only, and its readFile still fails for real', async () => {
    const answers = await expectSameAnswers('postgres');
    const secret = join(dir.path, 'secret');
    expect(answers.get(secret)!.stat).toMatchObject({ type: 'file', mode: 0o600, owner: 'root' });
    expect(answers.get(secret)!.content).toBeUndefined();
    await expect(transport.readFile(secret, { become: 'postgres' })).rejects.toThrow(/Permission denied/);
  });

  it('one command answers for all paths', async () => {
    const spy = new LocalTransport(localHost({ name: 'db-spy' }));
    let commands = 0;
    const exec = spy.exec.bind(spy);
    spy.exec = (argv, options) => {
      commands++;
      return exec(argv, options);
    };
    await readAheadPaths(spy, zoo);
    expect(commands).toBe(1);
    await spy.close();
  });
});

describe('parseReadAhead', () => {
  const nonce = 'pgplay-n';
  const encode = (text: string | Buffer) => Buffer.from(text).toString('base64');
  const stat = (size: number) => `81a4 644 root root ${size}`;
  /** Output for two regular files /a and /b whose stat said sizes a and b, and whose head printed body. */
  const twoFiles = (a: number, b: number, body: string, headStatus = 0) =>
    encode(`E\nE\n${nonce}\n${stat(a)}\n${stat(b)}\n${nonce} 0\nC\nC\n${nonce}\n${body}\n${nonce} ${headStatus}\n`);

  it('finds each file where the sizes stat reported put it', () => {
    const answers = parseReadAhead(twoFiles(3, 5, '==> /a <==\nabc\n==> /b <==\nhello'), ['/a', '/b'], nonce);
    expect(answers.get('/a')!.content!.toString()).toBe('abc');
    expect(answers.get('/b')!.content!.toString()).toBe('hello');
  });

  it('trusts no content when a file changed size between stat and read, but keeps every stat', () => {
    // /a grew from 3 to 4 bytes: /b's header is no longer where it must be.
    const answers = parseReadAhead(twoFiles(3, 5, '==> /a <==\nabcd\n==> /b <==\nhello'), ['/a', '/b'], nonce);
    expect(answers.get('/a')).toEqual({ stat: expect.objectContaining({ size: 3 }) });
    expect(answers.get('/b')).toEqual({ stat: expect.objectContaining({ size: 5 }) });
    // /b shrank: the output ends before its size.
    expect(parseReadAhead(twoFiles(3, 5, '==> /a <==\nabc\n==> /b <==\nhell'), ['/a', '/b'], nonce).get('/b')!.content).toBeUndefined();
    // /b grew: bytes are left over.
    expect(parseReadAhead(twoFiles(3, 5, '==> /a <==\nabc\n==> /b <==\nhello!'), ['/a', '/b'], nonce).get('/a')!.content).toBeUndefined();
  });

  it('trusts no content when head failed (a file it could not open has no header)', () => {
    const answers = parseReadAhead(twoFiles(3, 5, '==> /a <==\nabc', 1), ['/a', '/b'], nonce);
    expect(answers.get('/a')!.content).toBeUndefined();
    expect(answers.get('/b')!.content).toBeUndefined();
  });

  it('reads no further than the limit: a larger file is laid out but not vouched for', () => {
    const answers = parseReadAhead(twoFiles(10, 2, '==> /a <==\nabcd\n==> /b <==\nhi'), ['/a', '/b'], nonce, 4);
    expect(answers.get('/a')!.content).toBeUndefined();
    expect(answers.get('/b')!.content!.toString()).toBe('hi');
  });

  it('trusts no stat when stat failed or the lines are out of step', () => {
    const failed = encode(`E\nM\n${nonce}\n${nonce} 1\n`);
    const answers = parseReadAhead(failed, ['/a', '/b'], nonce);
    expect(answers.has('/a')).toBe(false);
    expect(answers.get('/b')).toEqual({ stat: { exists: false }, content: null });
  });

  it('rejects output of the wrong shape', () => {
    expect(() => parseReadAhead(encode('E\n'), ['/a'], nonce)).toThrow(/ends early/);
    expect(() => parseReadAhead(encode(`X\n${nonce}\n`), ['/a'], nonce)).toThrow(/existence flag/);
    expect(() => parseReadAhead(encode(`E\n${nonce}\n${stat(1)}\n${nonce} 0\nC\n${nonce}\nabc`), ['/a'], nonce)).toThrow(/does not end/);
  });
});
