import type { Step } from '../model/playbook.js';
import { inventoryRefusal } from './claims.js';
import { hostsStepMayRunOn } from './guards.js';
import { findHostsNeedingFacts } from './fact-hosts.js';
import { limiter } from './pool.js';
import { warmPreflight } from './preflight-warm.js';
import { readAheadAtStart } from './read-ahead.js';
import type { RunContext } from './run-context.js';
import { targetHosts, type HostSelector } from './schedule.js';
import { globalScope } from './scope.js';

/**
 * What happens before the first step: the vars are rendered, the facts of the involved hosts the
 * playbook's steps run on are gathered (fact-hosts.ts; beside a read-ahead for the first steps; any other
 * host's when something reads them), and a run whose inventory the facts contradict is refused. The
 * connections the first reads opened are closed unless a step connects.
 */
export async function startRun(run: RunContext, selectHosts: HostSelector, signal: AbortSignal): Promise<void> {
  const vars = { ...(run.inventory.vars ?? {}), ...(run.playbook.vars ?? {}) };
  run.vars = await run.withFacts(() => run.renderer.renderValue(vars, globalScope(run.scopeSources()), 'vars') as Record<string, unknown>);
  const involved = involvedHosts(run);
  // A guard runs on every host it names, --limit or not (guards.ts): those are read and checked now too,
  // so that a contradiction there refuses the run before its first step, not at the guard after changes.
  const stepHosts = (step: Step, id: string) => targetHosts(run, selectHosts, hostsStepMayRunOn(run, step, involved), step, id);
  const readAhead = { signal, timeoutMs: run.options.defaultTimeoutMs };
  // Each host's read starts as soon as the host is found (fact-hosts.ts), --forks at a time.
  const limit = limiter(run.options.forks);
  const gathered = new Set<string>();
  const reads: Array<Promise<unknown>> = [];
  const gather = (name: string) => {
    if (gathered.has(name)) return;
    gathered.add(name);
    reads.push(limit(() => Promise.all([run.readMissingFacts([name]), readAheadAtStart(run, name, stepHosts, readAhead)])));
  };
  const readAll = async () => {
    await findHostsNeedingFacts(run, involved, stepHosts, gather);
    await Promise.all(reads);
  };
  // The pre-flight's work that needs no facts is done while the hosts read them (preflight-warm.ts).
  const [, connects] = await Promise.all([readAll(), warmPreflight(run)]);
  // The connections the first reads opened (run-context.ts) are kept for the steps that connect: a run
  // with none keeps no session open on its servers (one would hold up a smart shutdown or a DROP DATABASE).
  if (!connects) await run.connections.closeAll();
  const contradicted = inventoryRefusal(run.hosts, run.facts, [...gathered], run.inventoryChecked);
  if (contradicted) throw contradicted;
}

/** The hosts whose facts a run gathers: those of the inventory, after --limit. */
export function involvedHosts(run: RunContext): string[] {
  return Object.keys(run.hosts).filter((h) => !run.options.limit || run.options.limit.includes(h));
}
