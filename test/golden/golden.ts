/**
 * Golden files: the expected output lives in test/golden/ and is reviewed like code. A test compares
 * what it renders with the stored text; `UPDATE_GOLDEN=1 npx vitest run ...` rewrites them, and the
 * diff then shows in git what changed.
 */
import { expect } from 'vitest';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = dirname(fileURLToPath(import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string) {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(dir, p));
    }
  }
  await walk(dir);
  return out.sort();
}

/** Compares a set of files (relative path -> content) with the golden directory `name`. */
export async function expectGoldenDir(name: string, files: Record<string, string>): Promise<void> {
  const dir = join(GOLDEN_DIR, name);
  if (UPDATE) {
    await rm(dir, { recursive: true, force: true });
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
    return;
  }
  expect(await listFiles(dir), `files in test/golden/${name}`).toEqual(Object.keys(files).sort());
  for (const [path, content] of Object.entries(files)) {
    expect(content, `test/golden/${name}/${path}`).toBe(await readFile(join(dir, path), 'utf8'));
  }
}

/** Compares one text with the golden file `name`. */
export async function expectGoldenFile(name: string, content: string): Promise<void> {
  const file = join(GOLDEN_DIR, name);
  if (UPDATE) {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, content);
    return;
  }
  expect(content, `test/golden/${name}`).toBe(await readFile(file, 'utf8'));
}
