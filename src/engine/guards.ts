/**
 * Safety the user cannot skip. Two rules live here, each with a small hook in run.ts:
 *
 * 1. Steps marked `guard: true` (pre-checks and fences) always run: --from and --tags do not pass them
 *    by, --limit does not narrow their hosts, and --resume runs them again instead of skipping them as
 *    done (a fence that holds simply reports ok). The steps after a guard are only safe while it holds,
 *    and what held in an earlier run may not hold any more (a fenced primary started again by hand).
 *
 * 2. The one-primary invariant, enforced by the engine whatever the playbook says: at most one server
 *    of the cluster runs read-write among the inventory's database hosts (drill copies excepted: they
 *    are promoted scratch copies that never archive). Read live before every step whose action can
 *    change a role (a promotion, a restore that promotes, a start), and again after it unless it changed
 *    nothing on any host (then the read before it still describes every server it could have touched);
 *    after it, a server the step itself read once every change had ended is taken as read (server-reads.ts);
 *    a step that would make a second primary is refused before it runs, and a second primary found
 *    after a step stops the run.
 *    Both exit 3. "Of the cluster": servers whose pg_control names the same system identifier (split
 *    brain is one cluster diverging); a server whose identifier is unknown counts with every cluster.
 *    A foreign cluster on a host is the identity checks' business, not a second primary.
 */
import type { RoleChange } from './action.js';
import type { HostFacts } from '../model/facts.js';
import { stopCommandText } from '../postgres/service.js';
import { PgplayError } from '../core/errors.js';
import { inventoryRefusal } from './claims.js';
import { evaluateCondition } from '../expr/index.js';
import type { Step } from '../model/playbook.js';
import type { HostStepResult } from './step.js';
import type { RunContext } from './run-context.js';
import { hostScope } from './scope.js';

/**
 * A resumed run knows from the start what the run it resumes registered (not only once it reaches those
 * steps): a guard that runs again can tell what that run already did (promote.yml's pre-checks accept a
 * candidate that run promoted). Steps that run again register afresh over these values.
 */
export function seedResumed(run: RunContext, prior: ReadonlyMap<string, { registered: Record<string, unknown> }> | undefined): void {
  for (const [key, done] of prior ?? []) {
    if (key.startsWith('handler:')) continue;
    const host = key.slice(key.lastIndexOf('@') + 1);
    Object.assign((run.registered[host] ??= {}), done.registered);
  }
}

export function isGuard(step: Step): boolean {
  return step.guard === true;
}

/** The hosts a step may run on: every host of the inventory for a guard (--limit does not narrow it), else `within`. */
export function hostsStepMayRunOn(run: RunContext, step: Step, within: string[]): string[] {
  return isGuard(step) ? Object.keys(run.hosts) : within;
}

/**
 * Before a step runs on `hosts`: reads the facts of those the run has not read (a guard step's outside
 * --limit, or hosts fact-hosts.ts left for later), and returns the refusal when the facts of one not
 * checked yet contradict the inventory (claims.ts), as the run's start does for the hosts it reads.
 */
export async function prepareStepHosts(run: RunContext, hosts: string[]): Promise<PgplayError | undefined> {
  await run.readMissingFacts(hosts);
  return inventoryRefusal(run.hosts, run.facts, hosts, run.inventoryChecked);
}

/** The hosts the invariant watches: the inventory's database hosts that are not drill copies. */
function clusterHosts(run: RunContext): string[] {
  return Object.entries(run.hosts)
    .filter(([, host]) => host.pgdata !== undefined && host.role !== 'drill' && host.role !== 'repository')
    .map(([name]) => name);
}

/**
 * Which of the step's hosts it may turn read-write, and how. Hosts where `when` is false change nothing.
 * Decided with the facts of every host the `when` and the input read (withFacts): one left unread would
 * make the input fail here, and the invariant pass the step by, before the step reads it and goes on.
 */
async function roleChanges(run: RunContext, step: Step, hosts: string[]): Promise<Map<string, RoleChange>> {
  const changes = new Map<string, RoleChange>();
  const watched = new Set(clusterHosts(run));
  const { action, input } = run.actionOf(step);
  if (!action.changesRole) return changes;
  for (const host of hosts) {
    if (!watched.has(host)) continue;
    try {
      const change = await run.withFacts(() => {
        const scope = hostScope(run.scopeSources(), host);
        if (step.when !== undefined && !evaluateCondition(step.when, scope)) return undefined;
        return action.changesRole!(run.renderer.renderValue(input, scope, `step ${step.id}`) as never);
      });
      if (change) changes.set(host, change);
    } catch {
      // An input that does not render fails the step itself before it changes anything.
    }
  }
  return changes;
}

/**
 * Reads every watched host's server now (its facts' 'server' area: running, recovery, pg_control's
 * identifier, read afresh here) and returns the ones running read-write, with what each read found.
 * `current`: hosts whose facts already describe their server as it is now, taken without a read.
 */
async function readWriteServers(run: RunContext, current: (host: string) => boolean = () => false): Promise<{ readWrite: string[]; reads: Map<string, HostFacts> }> {
  const hosts = clusterHosts(run);
  const fresh = await Promise.all(hosts.map((h) => (current(h) ? run.facts[h]! : run.refreshFacts(h, ['server']))));
  const reads = new Map(hosts.map((h, i) => [h, fresh[i]!] as const));
  return { readWrite: hosts.filter((h) => runsReadWrite(run, h)), reads };
}

/** Whether the run's facts of `host` say its server runs read-write (running, out of recovery). */
function runsReadWrite(run: RunContext, host: string): boolean {
  return run.facts[host]?.running === true && run.facts[host]?.in_recovery === false;
}

/** Whether two servers may be copies of one cluster (an unknown identifier may be anything). */
function sameCluster(run: RunContext, a: string, b: string): boolean {
  const x = run.facts[a]?.system_identifier;
  const y = run.facts[b]?.system_identifier;
  return x === undefined || y === undefined || x === y;
}

/** The read-write servers that share a cluster with another read-write server: the split brain. */
function splitGroup(run: RunContext, readWrite: string[]): string[] {
  return readWrite.filter((h) => readWrite.some((o) => o !== h && sameCluster(run, h, o)));
}

function fenceHint(run: RunContext, hosts: string[]): string {
  const how = hosts.map((h) => {
    const host = run.hosts[h]!;
    return `on ${h}: ${stopCommandText(host)}`;
  });
  return `fence all but the one that must stay primary: ${how.join('; ')}; promote.yml fences the old primary itself`;
}

function splitBrain(run: RunContext, readWrite: string[], when: string): PgplayError {
  return new PgplayError({
    code: 'GUARD',
    message: `${when}: ${readWrite.length} servers run read-write (${readWrite.join(', ')}); a cluster has one primary (split brain)`,
    hint: fenceHint(run, readWrite),
  });
}

/**
 * Before a run's first change, when a step ahead may change a role (preflight-render.ts): the split brain
 * the cluster is already in, as a refusal (exit 3); undefined when there is none. Found only at the step
 * that changes a role, it would come after the steps before it, a fence among them: promote.yml would stop
 * the old primary, then refuse to promote while another server runs read-write. From the facts the run
 * read; when a promotion may come, the watched hosts it has not read are read now (a start alone is
 * checked by the invariant before it, and a standby build is no fence: not worth a read of every host).
 */
export async function splitBrainBeforeFirstChange(run: RunContext, ahead: RoleChange): Promise<PgplayError | undefined> {
  const hosts = clusterHosts(run);
  if (ahead === 'promotes') await run.readMissingFacts(hosts);
  const split = splitGroup(
    run,
    hosts.filter((h) => runsReadWrite(run, h)),
  );
  return split.length > 1 ? splitBrain(run, split, 'before the first change') : undefined;
}

export interface RoleWatch {
  /** Set when the step must not run: the result every host reports instead. */
  refusal?: HostStepResult;
  /**
   * What the read before the step found on each host the step may turn read-write (its data directory
   * and server, as the facts script read them for this step, after the run's locks): the step's first
   * attempt there checks on it instead of reading it again (ENGINE_SERVER_READ). Only reads that reached
   * the host.
   */
  reads: ReadonlyMap<string, HostFacts>;
  /**
   * After the step: the error that stops the run when a second primary appeared. `changed`: whether any
   * host's result may have changed something (changed, or failed: a failure may come after a change).
   * A step that changed nothing anywhere cannot have made a primary; the read before it stands.
   */
  after(changed: boolean): Promise<PgplayError | undefined>;
  /** The step is over, however it ended: nothing more is read for it. */
  dispose(): void;
}

const NOTHING: RoleWatch = { reads: new Map(), after: async () => undefined, dispose: () => undefined };

/** The invariant around one step; a no-op for steps that cannot change a role, and under plan. */
export async function watchRoles(run: RunContext, step: Step, hosts: string[]): Promise<RoleWatch> {
  if (step.check_mode ?? run.options.check) return NOTHING;
  const changes = await roleChanges(run, step, hosts);
  if (changes.size === 0) return NOTHING;
  const refuse = (error: PgplayError): RoleWatch => ({
    refusal: { status: 'failed', error, attempts: 0, durationMs: 0, outcome: { changed: false, msg: error.message } },
    reads: new Map(),
    after: async () => undefined,
    dispose: () => undefined,
  });
  const { readWrite: before, reads } = await readWriteServers(run);
  const already = splitGroup(run, before);
  if (already.length > 1) return refuse(splitBrain(run, already, `before step ${step.id}`));
  for (const [host, change] of changes) {
    const others = before.filter((h) => h !== host && sameCluster(run, h, host));
    if (change === 'promotes' && others.length > 0) {
      return refuse(
        new PgplayError({
          code: 'GUARD',
          message: `${others.join(', ')} runs read-write: ${step.id} would make ${host} a second primary (split brain); the step was not run`,
          hint: `fence ${others.join(', ')} first (${fenceHint(run, others).replace(/^fence all but the one that must stay primary: /, '')})`,
          step: step.id,
          host,
        }),
      );
    }
  }
  // A step on one host: once its change has ended, the other watched servers are read while the step
  // reads its own server after its change, not after that (one after the other they took ~150 ms of
  // every start of a standby and every promotion on the lab). A later change (a retry) reads them again.
  const others = clusterHosts(run).filter((h) => !hosts.includes(h));
  const endedBefore = run.serverReads.endedCount;
  let early: Promise<unknown> = Promise.resolve();
  const stopEarly =
    hosts.length === 1 && others.length > 0
      ? run.serverReads.onChange(() => {
          // One batch after the other, each awaited whole (two reads of a host at once could leave the
          // older one's facts); a read that fails leaves its host to be read again in after().
          early = early.then(() => Promise.allSettled(others.map((h) => run.refreshFacts(h, ['server']))));
        })
      : () => undefined;
  return {
    reads: new Map([...reads].filter(([h, facts]) => changes.has(h) && facts.reachable)),
    dispose: stopEarly,
    async after(changed) {
      stopEarly();
      await early;
      // Any apply during the step counts, whatever the step reports: an earlier attempt may have changed
      // the server that a later one found as wanted (until, retries), and an apply abandoned by the
      // step's timeout may be running still.
      if (!changed && run.serverReads.endedCount === endedBefore && !run.serverReads.applyRunning) return undefined;
      // A server read after the step's last change ended (the step's own read after a start or a
      // promotion, those read early above: server-reads.ts) is as current as a read now; the others are
      // read again.
      const split = splitGroup(run, (await readWriteServers(run, (h) => run.serverReads.readSinceLastChange(h))).readWrite);
      return split.length > 1 ? splitBrain(run, split, `after step ${step.id}`) : undefined;
    },
  };
}
