import type { Step } from '../model/playbook.js';
import type { RunContext } from './run-context.js';

/**
 * The hosts whose facts a run gathers before its first step: every involved host, unless the playbook
 * provably touches and reads fewer. It does when each step and handler runs an action that declares
 * it reaches no other host (Action.ownHostOnly), none includes another playbook (its steps are not
 * known yet), every step's `hosts:` renders before the run (no registered value in it), and no
 * string of the playbook names `hosts` (a template or expression reading another host's facts). Then
 * the facts of the hosts those steps run on are enough: a guard step and the one-primary invariant
 * read the facts of the hosts they watch themselves when missing (guards.ts), as under --limit.
 */
export function hostsNeedingFacts(run: RunContext, involved: string[], stepHosts: (step: Step, id: string) => string[]): string[] {
  const { steps, handlers = {}, vars } = run.playbook;
  const bodies: Step[] = [...steps, ...(Object.values(handlers) as Step[])];
  if (bodies.some((step) => !run.actionDeclares(step, 'ownHostOnly')) || mentionsHosts([steps, handlers, vars])) return involved;
  const touched = new Set<string>();
  for (const [i, step] of steps.entries()) {
    try {
      for (const h of stepHosts(step, step.id ?? `#${i + 1}`)) touched.add(h);
    } catch {
      return involved;
    }
  }
  return involved.filter((h) => touched.has(h));
}

/** Whether any string in `value` uses the name `hosts` (hosts.db1.facts, hosts[x], lookup hosts ...). */
function mentionsHosts(value: unknown): boolean {
  if (typeof value === 'string') return /\bhosts\b/.test(value);
  if (Array.isArray(value)) return value.some(mentionsHosts);
  if (value && typeof value === 'object') return Object.entries(value).some(([key, v]) => key !== 'hosts' && mentionsHosts(v));
  return false;
}
