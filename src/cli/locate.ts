import { access, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { yamlLib } from '../load/yaml-lib.js';
import { PgplayError } from '../core/errors.js';
import { defaultStateDir } from '../core/paths.js';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The inventory a run uses: -i, else the playbook's `inventory:` key (relative to the playbook), else
 * PGPLAY_INVENTORY, else inventory.yml beside the playbook, else the lab's inventory when a lab is up.
 */
export async function locateInventory(playbookFile: string, flag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (flag) return resolve(flag);
  const playbookDir = dirname(resolve(playbookFile));
  let declared: unknown;
  try {
    declared = (yamlLib().parse(await readFile(playbookFile, 'utf8')) as { inventory?: unknown } | null)?.inventory;
  } catch {
    // The loader reports unreadable or malformed playbooks with their position; here we only look for the key.
  }
  if (typeof declared === 'string') return resolve(playbookDir, declared);
  if (env.PGPLAY_INVENTORY) return resolve(env.PGPLAY_INVENTORY);
  const beside = join(playbookDir, 'inventory.yml');
  if (await exists(beside)) return beside;
  const lab = await labInventory(env);
  if (lab) return lab;
  throw new PgplayError({
    code: 'USAGE',
    message: 'no inventory: none given with -i, in the playbook, in PGPLAY_INVENTORY, beside the playbook, or from a lab',
    hint: 'pass -i inventory.yml, or start the embedded lab with `pgplay lab up`',
  });
}

/** The lab writes a pointer to its inventory in the state directory while it is up. */
export async function labInventory(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const pointer = join(defaultStateDir(env), 'lab-inventory');
  try {
    const path = (await readFile(pointer, 'utf8')).trim();
    return (await exists(path)) ? path : undefined;
  } catch {
    return undefined;
  }
}
