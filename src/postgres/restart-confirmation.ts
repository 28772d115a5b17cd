import type { Confirmation } from './server-context.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';

/**
 * Restarting a running primary cuts every session and stops writes while it is down: a human (or
 * --yes) confirms it. One yes answers every restart of that host in the run (key "restart"), so the
 * early gate of a playbook (pending_restart) and the restart itself ask once.
 */
export function restartConfirmation(host: Host, facts: HostFacts, reason?: string): Confirmation | undefined {
  if (!facts.running || facts.in_recovery === true) return undefined;
  return {
    message: `restart ${host.name}${reason ? `: ${reason}` : ''} (${host.name} is ${facts.in_recovery === false ? 'the primary' : 'possibly a primary'}: its sessions are cut and writes stop while it restarts)`,
    key: 'restart',
  };
}
