/**
 * The cluster lock on the cluster's own hosts. The lock in the state directory only excludes runs
 * that share that directory; two operators (or a cron job and a human) with different state
 * directories would both act on the same cluster. So a run also holds a lock file on the primary host
 * and on the repository host, written through the transport:
 *
 *   <pgplay dir>/locks/<cluster>.lock       pgplay dir: the host var pgplay_dir, else `.pgplay` beside
 *                                           the host's data directory (or beside backup.repoPath on
 *                                           the repository host), else /var/lib/pgplay
 *
 * Created atomically (a private temp file hard-linked to the lock name, which fails when it exists);
 * it holds the pid, machine, run id, playbook and operator of the run. The rules are those of the
 * state-directory lock: a live holder is never taken over; a holder whose process is gone from its
 * machine (or that cannot be checked from here: another machine) is reported, and taken over only with
 * --force. Released at the end of every run; an unreachable host (a dead primary during a failover)
 * cannot hold a run back and is only warned about. On a local host the lock's files are this
 * process's own file calls rather than shell commands (host-lock-files.ts).
 */
import { hostname, userInfo } from 'node:os';
import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Host, Inventory } from '../model/inventory.js';
import type { Transport } from '../transports/types.js';
import { describeHolder, holderState, type HolderState, type LockInfo } from './cluster-lock.js';
import { hostLockFiles } from './host-lock-files.js';
import { processStartTime } from './process.js';

export interface HostLockInfo extends LockInfo {
  /** The OS user who started the run, on the machine it runs on. */
  operator: string;
}

/**
 * Where a host keeps pgplay's lock files, and the directory that must already exist for a lock to be
 * taken there (`.pgplay` is never the first thing created beside a data directory: a later step may
 * have to create that parent itself, with its own owner).
 */
export function hostLockDir(host: Host, inventory: Inventory): { dir: string; base?: string } {
  const own = host.vars.pgplay_dir;
  if (typeof own === 'string' && own.startsWith('/')) return { dir: posix.join(own, 'locks') };
  const beside = host.pgdata ?? (inventory.backup?.repoHost === host.name ? inventory.backup.repoPath : undefined);
  if (beside) {
    const base = posix.dirname(posix.normalize(beside));
    return { dir: posix.join(base, '.pgplay', 'locks'), base };
  }
  return { dir: '/var/lib/pgplay/locks' };
}

export function hostLockPath(host: Host, inventory: Inventory): string {
  return posix.join(hostLockDir(host, inventory).dir, `${inventory.cluster.replace(/[^A-Za-z0-9._-]/g, '_')}.lock`);
}

/** The hosts whose lock a run takes: the primary and the repository host. */
export function lockedHosts(hosts: Record<string, Host>, inventory: Inventory): Host[] {
  const names = new Set<string>();
  for (const h of Object.values(hosts)) if (h.role === 'primary') names.add(h.name);
  if (inventory.backup?.repoHost && hosts[inventory.backup.repoHost]) names.add(inventory.backup.repoHost);
  return [...names].map((n) => hosts[n]!);
}

export interface HostLockOptions {
  runId: string;
  playbook: string;
  force?: boolean;
  warn(message: string): void;
  /** A new connection to a host, for the release when the run's own connection broke meanwhile. */
  reconnect?(host: Host): Transport;
}

/** Locks held on hosts; release() removes each one that is still ours. */
export class HostLocks {
  constructor(
    private readonly held: Array<{ host: Host; path: string; transport: Transport }>,
    private readonly runId: string,
    private readonly warn: (message: string) => void,
    private readonly reconnect?: (host: Host) => Transport,
  ) {}

  get paths(): string[] {
    return this.held.map((h) => `${h.host.name}:${h.path}`);
  }

  async release(): Promise<void> {
    const held = this.held.splice(0);
    await Promise.all(
      held.map(async ({ host, path, transport }) => {
        const release = (t: Transport) => hostLockFiles(t).release(path, this.runId);
        try {
          await release(transport);
        } catch (first) {
          // The run's connection may have died (that is often why a run ends): a fresh one releases it.
          const fresh = this.reconnect?.(host);
          try {
            if (!fresh) throw first;
            await fresh.connect();
            await release(fresh);
          } catch (e) {
            this.warn(`could not release the lock ${path} on ${host.name} (${(e as Error).message}): the next run will report it as stale`);
          } finally {
            await fresh?.close().catch(() => undefined);
          }
        }
      }),
    );
  }
}

/**
 * Takes the lock on every host of `targets`, all at once (each is a try-lock: no run waits on another,
 * so taking them side by side cannot deadlock); on a refusal the ones taken are released before the
 * error of the first refused host (in the order of `targets`) is thrown.
 */
export async function acquireHostLocks(
  targets: Host[],
  inventory: Inventory,
  transportFor: (name: string) => Transport,
  options: HostLockOptions,
): Promise<HostLocks> {
  const info: HostLockInfo = {
    cluster: inventory.cluster,
    runId: options.runId,
    playbook: options.playbook,
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    procStart: processStartTime(process.pid),
    operator: userInfo().username,
  };
  const taken = await Promise.allSettled(
    targets.map(async (host) => {
      const transport = transportFor(host.name);
      try {
        await transport.connect();
      } catch (e) {
        options.warn(`${host.name} is unreachable (${(e as Error).message}): the run goes on without the cluster lock there`);
        return undefined;
      }
      const path = hostLockPath(host, inventory);
      return (await acquireOne(host, path, hostLockDir(host, inventory).base ?? '', transport, info, options)) ? { host, path, transport } : undefined;
    }),
  );
  const held = taken.flatMap((t) => (t.status === 'fulfilled' && t.value ? [t.value] : []));
  const refused = taken.find((t): t is PromiseRejectedResult => t.status === 'rejected');
  if (refused) {
    await new HostLocks(held, options.runId, options.warn, options.reconnect).release();
    throw refused.reason;
  }
  return new HostLocks(held, options.runId, options.warn, options.reconnect);
}

/** Takes one host's lock; false when there is nothing there yet to lock (no directory for the cluster). */
async function acquireOne(host: Host, path: string, base: string, transport: Transport, info: HostLockInfo, options: HostLockOptions): Promise<boolean> {
  const content = JSON.stringify(info) + '\n';
  const files = hostLockFiles(transport);
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await files.acquire(posix.dirname(path), path, base, content);
    if (r.answer === 'error') {
      throw new PgplayError({
        code: 'LOCK',
        message: `cannot take the cluster lock ${path} on ${host.name}: ${r.message}`,
        hint: `the connection user must be able to create it; set vars.pgplay_dir of ${host.name} to a directory it can write`,
      });
    }
    if (r.answer === 'acquired') return true;
    if (r.answer === 'absent') return false;
    const text = r.holder;
    if (text === '') continue; // released between our link and our read
    const holder = parseHolder(text);
    const state: HolderState = holder === 'corrupt' ? 'dead' : holderState(holder);
    if (state === 'alive' || !options.force) throw refusal(info.cluster, host.name, path, holder, state);
    if ((await files.takeOver(path, holder === 'corrupt' ? '' : holder.runId)) === 'taken') {
      options.warn(
        holder === 'corrupt'
          ? `--force: replaced the unreadable lock file ${path} on ${host.name}`
          : `--force: took over the stale lock on ${host.name} of ${describeHolder(holder)}`,
      );
    }
  }
  throw new PgplayError({ code: 'LOCK', message: `could not take the lock ${path} on ${host.name}: it keeps changing hands`, hint: 'retry in a moment' });
}

function parseHolder(text: string): HostLockInfo | 'corrupt' {
  try {
    const info = JSON.parse(text) as HostLockInfo;
    return typeof info.pid === 'number' && typeof info.runId === 'string' ? info : 'corrupt';
  } catch {
    return 'corrupt';
  }
}

function refusal(cluster: string, hostName: string, path: string, holder: HostLockInfo | 'corrupt', state: HolderState): PgplayError {
  if (holder === 'corrupt') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" has an unreadable lock file ${path} on ${hostName}`,
      hint: 'make sure no pgplay run is working on this cluster, then rerun with --force to take the lock over',
    });
  }
  const who = `${describeHolder(holder)}${holder.operator ? `, operator ${holder.operator}` : ''}`;
  if (state === 'dead') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" has a stale lock on ${hostName}: ${who} is no longer running`,
      hint: `that run stopped without releasing the lock ${path}; check the cluster, then rerun with --force to take the lock over`,
    });
  }
  if (state === 'unknown') {
    return new PgplayError({
      code: 'LOCK',
      message: `cluster "${cluster}" is locked on ${hostName} by ${who}; that machine's processes cannot be checked from here`,
      hint: `if that run is gone, rerun with --force to take the lock over (lock file ${path} on ${hostName})`,
    });
  }
  return new PgplayError({
    code: 'LOCK',
    message: `cluster "${cluster}" is locked on ${hostName} by ${who}`,
    hint: `one run at a time per cluster, whatever the state directory: wait for that run to finish (lock file ${path} on ${hostName})`,
  });
}
