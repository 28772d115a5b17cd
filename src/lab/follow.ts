/**
 * The lab follows a promotion: when the run used the lab's own inventory and the new primary is one
 * of the lab's database hosts, the lab's inventory and marker are rewritten with the roles swapped.
 * A user's inventory is theirs to edit; this listener leaves it alone.
 */
import type { TopologyChanged } from '../model/topology.js';
import { isLabPrimary, labDirOfInventory, setLabPrimary } from './roles.js';

export async function labFollowsTopology(event: TopologyChanged): Promise<{ inventoryRewritten: boolean }> {
  const labDir = await labDirOfInventory(event.inventory);
  if (labDir === undefined || !isLabPrimary(event.primary)) return { inventoryRewritten: false };
  await setLabPrimary(labDir, event.primary);
  return { inventoryRewritten: true };
}
