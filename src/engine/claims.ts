/**
 * The inventory is a claim; the facts are the truth. Before the first step (under plan too) the
 * claims that every PostgreSQL-aware step builds on are checked against what the hosts report: the
 * major version (the running server's server_version_num, else PGDATA/PG_VERSION) and the bindir (its
 * pg_ctl, and the major of its binaries). A contradiction refuses the run (exit 3) before
 * anything changes, naming the host, the claim and the fact: a 17 inventory against a 15 server would
 * otherwise plan fine and fail at the last step, after the changes before it.
 */
import { PgplayError } from '../core/errors.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { layoutRefusal } from './layout-guard.js';

/** Each contradiction between a host's claims and its facts, as a sentence naming the host. */
export function contradictedClaims(host: Host, facts: HostFacts | undefined): string[] {
  // An unreachable host's steps fail by name; a host without a data directory runs no server here.
  if (!facts?.reachable || !host.pgdata) return [];
  const out: string[] = [];
  const claimed = host.postgres.version;
  if (facts.version !== undefined && facts.version !== claimed) {
    const source =
      facts.server_version_num !== undefined
        ? `the server runs ${facts.version} (server_version_num ${facts.server_version_num})`
        : `${host.pgdata} holds a PostgreSQL ${facts.version} cluster (PG_VERSION)`;
    out.push(`${host.name}: the inventory says PostgreSQL ${claimed} (postgres.version), but ${source}`);
  }
  const bindir = facts.bindir;
  if (bindir) {
    if (!bindir.pg_ctl) {
      out.push(`${host.name}: postgres.bindir ${host.postgres.bindir} holds no pg_ctl (the PostgreSQL ${claimed} server binaries are not there)`);
    } else if (bindir.postgres_major !== undefined && bindir.postgres_major !== claimed) {
      out.push(
        `${host.name}: postgres.bindir ${host.postgres.bindir} holds PostgreSQL ${bindir.postgres_major} binaries (pg_ctl --version), but the inventory says ${claimed} (postgres.version)`,
      );
    }
  }
  return out;
}

/** A refusal listing every contradiction among the given hosts, or undefined when the claims hold. */
export function claimsRefusal(hosts: Record<string, Host>, facts: Record<string, HostFacts>, names: string[]): PgplayError | undefined {
  const problems = names.flatMap((name) => contradictedClaims(hosts[name]!, facts[name]));
  if (problems.length === 0) return undefined;
  return new PgplayError({
    code: 'GUARD',
    // Not "nothing was changed": a host read only when a step comes to it (one chosen by facts at run
    // time, a rescue's) is checked then, after the steps before it.
    message: `the inventory contradicts the hosts; nothing was done on them:\n${problems.join('\n')}`,
    hint: 'correct postgres.version / postgres.bindir in the inventory (cluster-wide or for the host), or point the host at the right server',
  });
}

/**
 * Before pgplay acts on hosts: the refusal when the facts of any of them not checked yet contradict
 * the inventory (the layout first: layout-guard.ts; then the claims above), else undefined. The hosts
 * checked are remembered in `checked`: the run checks those it reads at its start, then each host it
 * reads later (a guard's outside --limit) before the first step there.
 */
export function inventoryRefusal(hosts: Record<string, Host>, facts: Record<string, HostFacts>, names: string[], checked: Set<string>): PgplayError | undefined {
  const unchecked = names.filter((h) => !checked.has(h));
  const refusal = layoutRefusal(facts, unchecked) ?? claimsRefusal(hosts, facts, unchecked);
  if (!refusal) for (const h of unchecked) checked.add(h);
  return refusal;
}
