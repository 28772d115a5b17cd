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

/**
 * Every host with its facts and registered values, as templates and expressions see `hosts`. Built for
 * every step on every host (and again in the pre-flight), but it changes only when a host's facts or
 * registered values are replaced: the last view is kept per run (its facts map) and built again only then.
 * It is frozen, as every scope shares it.
 */
function hostsView(src: ScopeSources): Record<string, unknown> {
  const names = Object.keys(src.hosts);
  const parts = names.flatMap((name) => [src.hosts[name], src.facts[name], src.registered[name]]);
  const kept = views.get(src.facts);
  if (kept && kept.hosts === src.hosts && kept.registered === src.registered && samePieces(kept.parts, parts)) return kept.view;
  const view: Record<string, unknown> = {};
  for (const name of names) {
    view[name] = Object.freeze({ ...src.hosts[name], facts: src.facts[name] ?? {}, registered: src.registered[name] ?? {} });
  }
  views.set(src.facts, { hosts: src.hosts, registered: src.registered, parts, view: Object.freeze(view) });
  return view;
}

/** The last hosts view of each run, by its facts map (a run's facts, registered and hosts maps live as long as it). */
const views = new WeakMap<ScopeSources['facts'], { hosts: ScopeSources['hosts']; registered: ScopeSources['registered']; parts: unknown[]; view: Record<string, unknown> }>();

function samePieces(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((piece, i) => piece === b[i]);
}
