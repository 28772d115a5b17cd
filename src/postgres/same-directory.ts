/**
 * What the inventory alone says about two hosts' data directories: whether two paths are one or one lies
 * inside the other (lexically), and whether two hosts may be one machine. The inventory's checks use it
 * before any host is asked (load/inventory-semantic.ts), the identity guard before it asks them
 * (actions/identity-guard.ts, with identity.ts's reads of what the directories really are).
 */
import { posix } from 'node:path';
import type { Host } from '../model/inventory.js';

/** Lexical normal form of an absolute path, no trailing slash. */
export function normalPath(path: string): string {
  const n = posix.normalize(path);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Whether `inner` is `outer` or lies inside it (both normalised, absolute). */
export function within(inner: string, outer: string): boolean {
  return inner === outer || outer === '/' || inner.startsWith(outer + '/');
}

/**
 * Whether the inventory lets two hosts be one machine: the same address, or both reached with the
 * local transport (both are the machine pgplay runs on).
 */
export function maySameMachine(a: Pick<Host, 'address' | 'connection'>, b: Pick<Host, 'address' | 'connection'>): boolean {
  return a.address === b.address || (a.connection.transport === 'local' && b.connection.transport === 'local');
}
