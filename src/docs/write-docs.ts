/**
 * Writes docs/<playbook>.md for every shipped playbook (`npm run docs`); test/unit/docs-drift.test.ts
 * fails when one is stale. Without an inventory: the hosts are the playbook's patterns, and paths are
 * relative to the package, so the files are the same on every machine.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT, SHIPPED_PLAYBOOKS } from '../core/paths.js';
import { buildRunbook } from './runbook.js';

export const DOCS_DIR = join(PACKAGE_ROOT, 'docs');

/** The shipped playbooks' runbooks by file name (include/ holds parts, not procedures). */
export async function shippedRunbooks(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const names = (await readdir(SHIPPED_PLAYBOOKS)).filter((f) => /\.ya?ml$/.test(f)).sort();
  for (const name of names) {
    out.set(name.replace(/\.ya?ml$/, '.md'), await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, name), relativeTo: PACKAGE_ROOT }));
  }
  return out;
}

export async function writeShippedRunbooks(dir = DOCS_DIR): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of await shippedRunbooks()) {
    await writeFile(join(dir, name), text);
    written.push(join(dir, name));
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  for (const file of await writeShippedRunbooks()) process.stdout.write(`wrote ${file}\n`);
}
