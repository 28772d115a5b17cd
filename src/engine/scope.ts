import { ValueNotRead } from '../core/not-read.js';
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
  /**
   * A run's: reading hosts.<name>.facts of a host it has not read yet throws FactsNotRead, for the run
   * to read them and evaluate again (RunContext.withFacts). Without it (a runbook rendered with no
   * hosts to ask) they read as an empty mapping.
   */
  factsOnDemand?: boolean;
}

/** A value read hosts.<host>.facts before the run read that host's facts. */
export class FactsNotRead extends ValueNotRead {
  constructor(readonly host: string) {
    super(`the facts of ${host} have not been read`);
  }
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
  const scope: Record<string, unknown> = {
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
  return withUnreadFacts(scope, src, hostName);
}

/**
 * `target` (a scope or a host of the hosts view, whose `facts` is the host's or {}), with `facts` a getter
 * that throws FactsNotRead when the run has not read the host's facts yet. Enumerable like the rest, so
 * that a template walking it (json, each) reads them too.
 */
function withUnreadFacts(target: Record<string, unknown>, src: ScopeSources, hostName: string): Record<string, unknown> {
  if (!src.facts[hostName] && src.factsOnDemand) Object.defineProperty(target, 'facts', { enumerable: true, get: () => { throw new FactsNotRead(hostName); } });
  return target;
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
  const onDemand = src.factsOnDemand === true;
  const kept = views.get(src.facts);
  if (kept && kept.hosts === src.hosts && kept.registered === src.registered && kept.onDemand === onDemand && samePieces(kept.parts, parts)) return kept.view;
  const view: Record<string, unknown> = {};
  for (const name of names) {
    view[name] = Object.freeze(withUnreadFacts({ ...src.hosts[name], facts: src.facts[name] ?? {}, registered: src.registered[name] ?? {} }, src, name));
  }
  views.set(src.facts, { hosts: src.hosts, registered: src.registered, onDemand, parts, view: Object.freeze(view) });
  return view;
}

/** The last hosts view of each run, by its facts map (a run's facts, registered and hosts maps live as long as it). */
const views = new WeakMap<
  ScopeSources['facts'],
  { hosts: ScopeSources['hosts']; registered: ScopeSources['registered']; onDemand: boolean; parts: unknown[]; view: Record<string, unknown> }
>();

function samePieces(a: unknown[], b: unknown[]): boolean {
  return a.length === b.length && a.every((piece, i) => piece === b[i]);
}
