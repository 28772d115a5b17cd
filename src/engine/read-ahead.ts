import type { Step } from '../model/playbook.js';
import { readAheadPaths } from '../transports/read-ahead.js';
import { ReadAheadTransport } from '../transports/read-ahead-cache.js';
import { validateRenderedInput } from './input.js';
import type { RunContext } from './run-context.js';
import { hostScope } from './scope.js';

/** At most this many steps are read ahead at once, so a long run of steps does not read far more than it uses. */
export const READ_AHEAD_STEPS = 64;

/**
 * The steps from `index` on whose state checks can be read ahead: consecutive steps whose action
 * declares its reads (file, template). After two steps in a row that changed something of unknown
 * extent, only the next step: such steps keep making everything read ahead untrue, and reading the
 * rest again after each would only cost. After one, the whole window again: most changes of file and
 * template steps are of known extent and keep the rest (a first run reads once, not once per step).
 */
export function readAheadWindow(run: Pick<RunContext, 'readAheadCache' | 'actionOf'>, steps: Step[], index: number, prefix: string): Step[] {
  const window: Step[] = [];
  const limit = run.readAheadCache.unknownChangesInARow > 1 ? 1 : READ_AHEAD_STEPS;
  for (let i = index; i < steps.length && window.length < limit; i++) {
    const step = steps[i]!;
    // A loop's input depends on its item: its reads cannot be told ahead.
    if (step.include !== undefined || step.loop !== undefined) break;
    const { action } = run.actionOf(step);
    if (!action.readAhead) break;
    window.push({ ...step, id: prefix + step.id });
  }
  return window;
}

/** Per host, the steps of a window that run there (up to the first step whose hosts cannot be told yet). */
export function windowByHost(window: Step[], stepHosts: (step: Step, id: string) => string[]): (host: string) => Step[] {
  const targeted: Array<{ step: Step; hosts: string[] }> = [];
  for (const step of window) {
    try {
      targeted.push({ step, hosts: stepHosts(step, step.id) });
    } catch {
      break;
    }
  }
  return (host) => targeted.filter((t) => t.hosts.includes(host)).map((t) => t.step);
}

/**
 * While a host's facts are gathered, on a channel of its own: read ahead for the first steps of the run.
 * Their inputs are rendered without facts; one that needs them fails to render and is left out, as
 * is every step whose hosts depend on facts. Nothing is lost when this reads nothing or reads a path
 * nobody asks for: the first step reads ahead for itself when the cache cannot answer.
 */
export async function readAheadAtStart(
  run: RunContext,
  hostName: string,
  stepHosts: (step: Step, id: string) => string[],
  options: { signal: AbortSignal; timeoutMs: number },
): Promise<void> {
  // Rendering the window's inputs takes a while (the first renders compile): let the facts command go
  // out first, so that this runs while the host works on it instead of before it.
  await new Promise((resolve) => setImmediate(resolve));
  const window = windowByHost(readAheadWindow(run, run.playbook.steps, 0, ''), stepHosts)(hostName);
  if (window.length === 0) return;
  try {
    await run.transportFor(hostName).connect();
  } catch {
    return; // Fact gathering reports the host unreachable.
  }
  await readAhead(run, hostName, window, options);
}

/** Whether a step's action may change a host other than through its transport, or reads what it cannot declare. */
export function readsAreDeclared(run: RunContext, step: Step): boolean {
  if (step.include !== undefined) return false;
  return run.actionOf(step).action.readAhead !== undefined;
}

/**
 * Before a step's check on a host: when the cache cannot answer the step's own reads, fetch the reads of
 * the whole window in one command per user. Rendering a later step's input can fail or come out
 * different once earlier steps have registered values; the window then ends there, or the cache holds
 * a path nobody asks for. A fetch that fails is ignored: the check makes its own calls and reports.
 * `ownReads`: the reads of the window's first step when the caller has its input rendered already.
 */
export async function readAhead(
  run: RunContext,
  hostName: string,
  window: Step[],
  options: { signal: AbortSignal; timeoutMs: number },
  ownReads?: string[],
): Promise<void> {
  const transport = run.transportFor(hostName);
  if (!(transport instanceof ReadAheadTransport) || window.length === 0) return;
  const host = run.hosts[hostName]!;
  const becomeOf = (step: Step) => step.become ?? host.connection.become;
  // Most steps of a window find their reads fetched already: look at the step's own before rendering the rest.
  const own = ownReads ?? declaredReads(run, window[0]!, hostName);
  if (own === undefined || own.every((p) => run.readAheadCache.get(hostName, becomeOf(window[0]!), p) !== undefined)) return;
  const byUser = new Map<string | undefined, Set<string>>();
  window.forEach((step, i) => {
    const paths = i === 0 ? own : declaredReads(run, step, hostName);
    if (paths === undefined) return;
    let set = byUser.get(becomeOf(step));
    if (!set) byUser.set(becomeOf(step), (set = new Set()));
    for (const p of paths) set.add(p);
  });
  await Promise.all(
    [...byUser].map(async ([become, paths]) => {
      const token = run.readAheadCache.begin(hostName);
      try {
        const answers = await readAheadPaths(transport.inner, [...paths], { become, signal: options.signal, timeoutMs: options.timeoutMs });
        run.readAheadCache.store(hostName, become, token, answers);
      } catch {
        // The check's own calls will meet the same trouble and report it with the step and host.
      }
    }),
  );
}

function declaredReads(run: RunContext, step: Step, hostName: string): string[] | undefined {
  try {
    const { action, input } = run.actionOf(step);
    const rendered = run.renderer.renderValue(input, hostScope(run.scopeSources(), hostName), `step ${step.id}`);
    return action.readAhead?.(validateRenderedInput(action, rendered) as never);
  } catch {
    return undefined;
  }
}
