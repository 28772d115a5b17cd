/**
 * requireExact (src/core/require-exact.ts): a CommonJS file by its exact path, loaded as require() loads it
 * once resolved: one module per file whichever way it is required, a module being loaded returned as it
 * stands, a file that failed to load tried again, and node's own handling for a missing file or a link.
 */
import { mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireExact } from '../../src/core/require-exact.js';

const require = createRequire(import.meta.url);
let dir: string;

/** How many times each file's code ran, counted by the files themselves. */
const evaluations = (): Record<string, number> => ((globalThis as Record<string, unknown>).__requireExactRuns ??= {}) as Record<string, number>;

/** A CommonJS file that counts its evaluations and exports `body`'s result. */
async function file(name: string, body = `module.exports = { name: ${JSON.stringify(name)} };`): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `globalThis.__requireExactRuns ??= {}; globalThis.__requireExactRuns[${JSON.stringify(name)}] = (globalThis.__requireExactRuns[${JSON.stringify(name)}] ?? 0) + 1;\n${body}\n`);
  return path;
}

beforeAll(async () => {
  // Its real path: node keys modules by theirs (a tmpdir under a link, as macOS's, would differ).
  dir = await realpath(await mkdtemp(join(tmpdir(), 'pgplay-require-exact-')));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const noFallback = (): never => {
  throw new Error('fallback used');
};

describe('requireExact', () => {
  it('loads a file once, as the same module require() finds', async () => {
    const path = await file('once.cjs');
    const first = requireExact(path, undefined, noFallback);
    expect(first).toEqual({ name: 'once.cjs' });
    expect(requireExact(path, undefined, noFallback)).toBe(first);
    expect(require(path)).toBe(first);
    expect(require.cache[path]?.loaded).toBe(true);
    expect(evaluations()['once.cjs']).toBe(1);
  });

  it('finds a module require() loaded first', async () => {
    const path = await file('required-first.cjs');
    const viaRequire = require(path) as unknown;
    expect(requireExact(path, undefined, noFallback)).toBe(viaRequire);
    expect(evaluations()['required-first.cjs']).toBe(1);
  });

  it('returns a module being loaded as it stands, as a circular require() does', async () => {
    const a = join(dir, 'circle-a.cjs');
    const b = join(dir, 'circle-b.cjs');
    // The test's requireExact is handed to the files through a global: they call it as the bundle's require does.
    (globalThis as Record<string, unknown>).__requireExact = requireExact;
    // b asks for a while a is loading: requireExact leaves it to node's require(), which answers with a as it stands.
    await file('circle-a.cjs', `exports.before = 1; exports.seen = globalThis.__requireExact(${JSON.stringify(b)}, module, () => { throw new Error('fallback'); }); exports.after = 2;`);
    await file('circle-b.cjs', `const a = globalThis.__requireExact(${JSON.stringify(a)}, module, () => require(${JSON.stringify(a)})); module.exports = { aBefore: a.before, aAfter: a.after };`);
    const loaded = requireExact(a, undefined, noFallback) as { before: number; after: number; seen: unknown };
    expect(loaded).toEqual({ before: 1, after: 2, seen: { aBefore: 1, aAfter: undefined } });
    expect(evaluations()['circle-a.cjs']).toBe(1);
    expect(evaluations()['circle-b.cjs']).toBe(1);
  });

  it('keeps no module of a file that failed to load: the next call runs it again', async () => {
    const path = await file('throws.cjs', `throw new Error('broken on purpose');`);
    expect(() => requireExact(path, undefined, noFallback)).toThrow('broken on purpose');
    expect(require.cache[path]).toBeUndefined();
    expect(() => requireExact(path, undefined, noFallback)).toThrow('broken on purpose');
    expect(evaluations()['throws.cjs']).toBe(2);
  });

  it('leaves a module in the cache that has not finished loading to require()', async () => {
    const path = await file('unloaded.cjs');
    const pending = { loaded: false, exports: { pending: true } };
    require.cache[path] = pending as never;
    try {
      expect(requireExact(path, undefined, () => 'asked require()')).toBe('asked require()');
    } finally {
      delete require.cache[path];
    }
  });

  it("leaves a missing file to require(), for node's own error", () => {
    const path = join(dir, 'missing.cjs');
    expect(() => requireExact(path, undefined, () => require(path))).toThrow(expect.objectContaining({ code: 'MODULE_NOT_FOUND' }));
    expect(require.cache[path]).toBeUndefined();
  });

  it("leaves a link to require(), which keys the module by the link's target: one module either way", async () => {
    const target = await file('target.cjs');
    const link = join(dir, 'link.cjs');
    await symlink(target, link);
    let fallbacks = 0;
    const viaLink = requireExact(link, undefined, () => {
      fallbacks += 1;
      return require(link);
    });
    expect(fallbacks).toBe(1);
    expect(require.cache[link]).toBeUndefined();
    expect(requireExact(target, undefined, noFallback)).toBe(viaLink);
    expect(evaluations()['target.cjs']).toBe(1);
  });
});
