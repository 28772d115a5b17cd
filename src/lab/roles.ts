/**
 * After a promotion the lab's inventory follows the real topology: which of db1 and db2 is the primary
 * is read from the servers themselves (the one running read-write), and the inventory is rewritten
 * with the roles swapped, so every shipped playbook goes on working against the lab without edits.
 * A production inventory is the user's to change; pgplay only tells what to change there.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { gatherFacts } from '../engine/facts.js';
import { resolveHosts } from '../load/hosts.js';
import { createTransport } from '../transports/index.js';
import { inventoryYaml, labInventory, type LabPrimary } from './inventory.js';
import type { LabOptions } from './options.js';
import { labInventoryFile, readMarker, writeMarker, type LabMarker } from './state.js';

export function isLabPrimary(name: string): name is LabPrimary {
  return name === 'db1' || name === 'db2';
}

export function markerOptions(marker: LabMarker): LabOptions {
  const { version: _v, created: _c, primary: _p, ...options } = marker;
  return options;
}

/** The one of db1 and db2 that runs read-write, or `current` when that is not clear (both down, say). */
export async function primaryFromFacts(options: LabOptions, current: LabPrimary): Promise<LabPrimary> {
  const hosts = resolveHosts(labInventory(options, current));
  const readWrite: LabPrimary[] = [];
  for (const name of ['db1', 'db2'] as const) {
    const host = hosts[name]!;
    const transport = createTransport(host, { hosts, resolveSecret: async () => undefined });
    try {
      const facts = await gatherFacts(host, transport);
      if (facts.running && facts.in_recovery === false) readWrite.push(name);
    } finally {
      await transport.close();
    }
  }
  return readWrite.length === 1 ? readWrite[0]! : current;
}

/** Rewrites the lab's inventory and marker for a new primary; false when nothing changed. */
export async function setLabPrimary(dir: string, primary: LabPrimary): Promise<boolean> {
  const marker = await readMarker(dir);
  if (!marker) return false;
  const options = markerOptions(marker);
  const file = labInventoryFile(dir);
  const text = inventoryYaml(options, primary);
  const before = await readFile(file, 'utf8').catch(() => undefined);
  if ((marker.primary ?? 'db1') === primary && before === text) return false;
  await writeFile(file, text, { mode: 0o644 });
  await writeMarker(options, new Date(marker.created), primary);
  return true;
}

/** When `inventoryFile` is a lab's inventory, the lab directory; else undefined. */
export async function labDirOfInventory(inventoryFile: string): Promise<string | undefined> {
  const dir = dirname(inventoryFile);
  if (labInventoryFile(dir) !== inventoryFile) return undefined;
  return (await readMarker(dir).catch(() => undefined)) ? dir : undefined;
}
