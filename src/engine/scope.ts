import type { HostFacts } from '../model/facts.js';
import type { Host, Inventory } from '../model/inventory.js';

/**
 * The data templates and expressions see. Built per step and host from the run's state; registered
 * results are top-level names (like Ansible) and also reachable for other hosts as
 * hosts.<name>.registered.<var>, facts as hosts.<name>.facts.
 */
export interface ScopeSources {
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  inventory: Inventory;
  hosts: Record<string, Host>;
  facts: Record<string, HostFacts>;
  registered: Record<string, Record<string, unknown>>;
}

export function globalScope(src: ScopeSources): Record<string, unknown> {
  return {
    params: src.params,
    vars: src.vars,
    inventory: src.inventory,
    hosts: hostsView(src),
  };
}

export function hostScope(src: ScopeSources, hostName: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const own = src.registered[hostName] ?? {};
  const host = src.hosts[hostName]!;
  return {
    ...own,
    ...extra,
    params: src.params,
    vars: { ...src.vars, ...host.vars },
    inventory: src.inventory,
    hosts: hostsView(src),
    host,
    facts: src.facts[hostName] ?? {},
    registered: own,
  };
}

function hostsView(src: ScopeSources): Record<string, unknown> {
  const view: Record<string, unknown> = {};
  for (const [name, host] of Object.entries(src.hosts)) {
    view[name] = { ...host, facts: src.facts[name] ?? {}, registered: src.registered[name] ?? {} };
  }
  return view;
}
