import type { Step } from '../model/playbook.js';
import { claimsRefusal } from './claims.js';
import { hostsNeedingFacts } from './fact-hosts.js';
import { refuseLayoutContradictions } from './layout-guard.js';
import { mapLimit } from './pool.js';
import { warmPreflight } from './preflight-warm.js';
import { readAheadAtStart } from './read-ahead.js';
import type { RunContext } from './run-context.js';
import { targetHosts, type HostSelector } from './schedule.js';
import { globalScope } from './scope.js';

/**
 * What happens before the first step: the vars are rendered, the facts of every involved host the
 * playbook can touch are gathered (fact-hosts.ts; beside a read-ahead for the first steps), and a run
 * whose inventory the facts contradict is refused. The connections the first reads opened are closed
 * unless a step connects.
 */
export async function startRun(run: RunContext, selectHosts: HostSelector, signal: AbortSignal): Promise<void> {
  run.vars = run.renderer.renderValue({ ...(run.inventory.vars ?? {}), ...(run.playbook.vars ?? {}) }, globalScope(run.scopeSources()), 'vars');
  const involved = involvedHosts(run);
  const stepHosts = (step: Step, id: string) => targetHosts(run, selectHosts, involved, step, id);
  const readAhead = { signal, timeoutMs: run.options.defaultTimeoutMs };
  const gathered = hostsNeedingFacts(run, involved, stepHosts);
  // The pre-flight's work that needs no facts is done while the hosts read them (preflight-warm.ts).
  const [, connects] = await Promise.all([
    mapLimit(gathered, run.options.forks, (name) => Promise.all([run.refreshFacts(name), readAheadAtStart(run, name, stepHosts, readAhead)])),
    warmPreflight(run),
  ]);
  // The connections the first reads opened (run-context.ts) are kept for the steps that connect: a run
  // with none keeps no session open on its servers (one would hold up a smart shutdown or a DROP DATABASE).
  if (!connects) await run.connections.closeAll();
  refuseLayoutContradictions(run.facts, gathered);
  const contradicted = claimsRefusal(run.hosts, run.facts, gathered);
  if (contradicted) throw contradicted;
}

/** The hosts whose facts a run gathers: those of the inventory, after --limit. */
export function involvedHosts(run: RunContext): string[] {
  return Object.keys(run.hosts).filter((h) => !run.options.limit || run.options.limit.includes(h));
}
