import type { Step } from '../model/playbook.js';
import type { HostEntry } from './loop.js';
import type { RunContext } from './run-context.js';

/**
 * `notify`: the handlers that changed steps owe, per host. A change made by the resumed run still owes
 * its handlers (they run at the end, so they had not run yet).
 */
export class Notifications {
  private readonly notified = new Map<string, Set<string>>();

  /** A step's results on a host: any change (now or in the resumed run) notifies the step's handlers there. */
  note(step: Step, host: string, entries: HostEntry[]): void {
    if (!entries.some(({ result, prior }) => result.status === 'changed' || prior?.status === 'changed')) return;
    for (const name of step.notify ?? []) (this.notified.get(name) ?? this.notified.set(name, new Set()).get(name)!).add(host);
  }

  /**
   * The handlers owed, in the order the playbook defines them (not the order they were notified), each
   * as a step on the notified hosts that its own `hosts`, if any, also names. Lazily: a handler's
   * `hosts` is rendered only once the handlers before it have run (they may register what it names).
   */
  async *owed(run: RunContext, stepHosts: (step: Step, id: string) => string[]): AsyncGenerator<Step> {
    for (const [name, handler] of Object.entries(run.playbook.handlers ?? {})) {
      const hosts = this.notified.get(name);
      if (!hosts) continue;
      const selected = handler.hosts ? (await run.withFacts(() => stepHosts({ ...handler, id: name } as Step, name))).filter((h) => hosts.has(h)) : [...hosts];
      if (selected.length > 0) yield { ...handler, id: name, hosts: selected } as Step;
    }
  }
}
