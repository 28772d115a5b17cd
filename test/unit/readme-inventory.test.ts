/**
 * The inventory of the README's "From the lab to your servers" is the one the rig procedure tests start
 * from (test/e2e/fixtures/rig-procedures/scenario.ts reads it): it must validate, and say what the section
 * promises: the Debian layout, a repository host, three database hosts, no host vars.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expect, test } from 'vitest';
import { loadInventory } from '../../src/load/inventory.js';
import { readmeInventory } from '../e2e/fixtures/rig-procedures/readme-inventory.js';

test("the README's inventory for your own servers validates: debian layout, db1 db2 drill1 and a repository host, no host vars", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pgplay-readme-inventory-'));
  try {
    const file = join(dir, 'inventory.yml');
    await writeFile(file, stringify(await readmeInventory()));
    const { inventory } = await loadInventory(file);
    expect(inventory.postgres.layout).toBe('debian');
    expect(inventory.backup?.repoHost).toBe('bk1');
    expect(Object.fromEntries(Object.entries(inventory.hosts).map(([name, h]) => [name, h.role]))).toEqual({
      db1: 'primary',
      db2: 'standby',
      drill1: 'drill',
      bk1: 'repository',
    });
    for (const h of Object.values(inventory.hosts)) expect(h.vars ?? {}).toEqual({});
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
