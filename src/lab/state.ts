/**
 * What marks a directory as a lab (so `lab down` never removes anything else) and the pointer in the
 * state directory through which `pgplay run` finds the lab's inventory without -i.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { defaultStateDir } from '../core/paths.js';
import { LAB_INVENTORY, LAB_MARKER } from './layout.js';
import type { LabOptions } from './options.js';

export const MARKER_VERSION = 1;

export interface LabMarker extends LabOptions {
  version: number;
  created: string;
  /** Which of db1 and db2 is the primary (db2 after a promotion). */
  primary?: 'db1' | 'db2';
}

export async function readMarker(dir: string): Promise<LabMarker | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, LAB_MARKER), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const marker = JSON.parse(text) as LabMarker;
    if (marker.version !== MARKER_VERSION || marker.dir !== dir) throw new Error('unexpected content');
    return marker;
  } catch (e) {
    throw new PgplayError({
      code: 'GUARD',
      message: `${join(dir, LAB_MARKER)} is not a lab marker pgplay can read (${(e as Error).message})`,
      hint: 'remove the directory yourself if it is a lab; pgplay will not touch a directory it cannot identify',
    });
  }
}

export async function writeMarker(options: LabOptions, created = new Date(), primary: 'db1' | 'db2' = 'db1'): Promise<void> {
  const marker: LabMarker = { version: MARKER_VERSION, ...options, created: created.toISOString(), primary };
  await writeFile(join(options.dir, LAB_MARKER), JSON.stringify(marker, null, 2) + '\n', { mode: 0o644 });
}

export function pointerFile(env: NodeJS.ProcessEnv = process.env): string {
  return join(defaultStateDir(env), 'lab-inventory');
}

export function labInventoryFile(dir: string): string {
  return join(dir, LAB_INVENTORY);
}

export async function readPointer(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  try {
    const text = (await readFile(pointerFile(env), 'utf8')).trim();
    return text === '' ? undefined : text;
  } catch {
    return undefined;
  }
}

export async function writePointer(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const file = pointerFile(env);
  await mkdir(join(file, '..'), { recursive: true, mode: 0o700 });
  await writeFile(file, labInventoryFile(dir) + '\n', { mode: 0o600 });
}

/** Removes the pointer only when it names this lab: another lab's pointer is not ours to drop. */
export async function removePointer(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if ((await readPointer(env)) !== labInventoryFile(dir)) return false;
  await rm(pointerFile(env), { force: true });
  return true;
}
