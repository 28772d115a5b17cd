/**
 * Identity before destruction. Every step that stops, initializes, restores into, copies into or
 * removes a data directory calls guardDestruction first: it reads what the directory is (on its host,
 * through that host's transport, as the PGDATA owner) and refuses (GUARD, exit 3) when
 *
 * - it is, holds or lies inside another inventory host's PGDATA, above all the primary's: by the
 *   inventory (the same address, or both hosts on the local transport, and the same pgdata or one inside
 *   the other), or in fact (the same directory key, read on both hosts: a symbolic link, a bind mount).
 *   No flag lifts this one. A file about to be removed gets the same question (guardFileRemoval).
 * - it holds a cluster other than the inventory's (pg_control's system identifier differs from the
 *   primary's, or no identifier of the inventory's cluster can be found to compare with), unless the
 *   user asked for exactly this host to be rebuilt (`replace`).
 *
 * These refusals hold in check mode too (plan shows them): nothing an earlier step of a playbook does
 * can make another host's directory this host's. Whether a server runs there is returned for the
 * action to judge (an earlier `postgres: stopped` step may still change that), where the request compares
 * the cluster (`cluster: true`): the other requests read only which directory each path is, so their
 * target says nothing of pg_control, PG_VERSION or postmaster.pid.
 */
import { posix } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import { factsArgv, parseFacts } from '../postgres/facts.js';
import { describeContents, identityArgv, parseIdentities, type DirectoryIdentity } from '../postgres/identity.js';
import { maySameMachine, normalPath, within } from '../postgres/same-directory.js';
import { describeUserData, holdsUserData, parseUserData, userDataArgv } from '../postgres/user-data.js';
import type { ActionContext } from './types.js';

export interface DestructionRequest {
  /** What the step does, for messages: "restore into", "copy into", "stop the server of", "initdb in", "remove". */
  verb: string;
  /** The directory about to be destroyed: the host's PGDATA, or a path being removed. */
  path: string;
  /** Also require that the cluster there is the inventory's (same system identifier). */
  cluster: boolean;
  /** The user asked for exactly this host to be rebuilt: another cluster there may be replaced (if it holds no user data). */
  replace?: boolean;
  /** With replace: the system identifier of the cluster the user named to be replaced even though it holds user data. */
  replaceSysid?: string;
  /** Where else the inventory's cluster's identifier can be read when no database host tells it (a restore: the stanza). */
  fallbackReference?: () => Promise<ClusterReference | undefined>;
  /** The OS user to read as (default: the host's PGDATA owner; null: the user the transport logs in as). */
  as?: string | null;
}

export interface ClusterReference {
  systemIdentifier: string;
  /** Where it was read, for messages: "the primary db1", "stanza main in the repository". */
  from: string;
}

export interface Examined {
  target: DirectoryIdentity;
  /** The host's own PGDATA, when it is the path or lies inside it. */
  ownPgdata?: DirectoryIdentity;
  /** Set when the directory holds another cluster that `replace` allows to be replaced. */
  replacing?: string;
}

export async function guardDestruction(ctx: ActionContext, req: DestructionRequest): Promise<Examined> {
  const host = ctx.host;
  const path = normalPath(req.path);
  const others = otherPgdataHosts(ctx);
  refuseByInventory(ctx, req, path, others, true);

  // Read here: the path, this host's PGDATA, and where the other hosts' PGDATA paths lead on this machine.
  // Their pg_control (a pg_controldata each, ~8 ms) only where the cluster is compared: which directory
  // each is is all the other guards look at (a standby's stop, a copy or initdb into a directory).
  const ownPath = host.pgdata ? normalPath(host.pgdata) : undefined;
  const leading = [path, ...(ownPath && ownPath !== path ? [ownPath] : [])];
  const { here, ordered, theirs, ancestors } = await readWithOthers(ctx, others, leading, req.cluster, req.as, path);
  const target = here[0]!;
  if (!target.known) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to ${req.verb} ${path} on ${host.name}: cannot tell what it is (${target.error})`,
      hint: `${req.as === null ? 'the login user' : (req.as ?? host.postgres.osUser)} must be able to read the directory and its parent`,
    });
  }
  const own = ownPath === path ? target : ownPath ? here[1] : undefined;
  const ownPgdata = own?.directory && target.real && own.real && within(own.real, target.real) ? own : undefined;
  // A path that is not there (yet) or not a directory still must not lie inside another host's PGDATA.
  refuseAncestorPgdata(ctx, req, path, ancestors, ordered, theirs);
  if (!target.directory) return { target, ownPgdata };

  // In fact: the other hosts say which directory their PGDATA is; the same key is the same directory.
  const seenHere = here.slice(leading.length);
  ordered.forEach((other, i) => {
    const their = theirs[i];
    if (!their?.key) return;
    if (their.key === target.key) throw sharedDirectory(ctx, req, path, other, 'is', 'the same directory on the same machine');
    const visible = seenHere[i]!;
    if (visible.key === their.key && visible.real && target.real && within(visible.real, target.real)) {
      throw sharedDirectory(ctx, req, path, other, 'contains', `${other.name}'s PGDATA is ${visible.real} on this machine`);
    }
  });
  if (target.real) refuseRealPathInside(ctx, req, path, target.real, seenHere, ordered, theirs);

  if (!req.cluster) return { target, ownPgdata };
  const subject = target.systemIdentifier ? target : ownPgdata?.systemIdentifier ? ownPgdata : undefined;
  if (!subject) return { target, ownPgdata };
  const reference = (await clusterIdentity(ctx, ordered, theirs)) ?? (await req.fallbackReference?.());
  const what = describeContents(subject);
  if (reference && reference.systemIdentifier === subject.systemIdentifier) return { target, ownPgdata };
  if (!reference && host.role === 'primary') return { target, ownPgdata };
  if (req.replace) {
    await guardUserData(ctx, req, subject.path, subject.systemIdentifier!, what);
    ctx.log(`${subject.path} holds ${what}; replacing it as asked`);
    return { target, ownPgdata, replacing: what };
  }
  const cluster = ctx.inventory.cluster;
  throw new PgplayError({
    code: 'GUARD',
    message: reference
      ? `refusing to ${req.verb} ${path} on ${host.name}: ${subject.path} holds another cluster, ${what}, not the inventory's cluster ${cluster} (system identifier ${reference.systemIdentifier}, from ${reference.from})`
      : `refusing to ${req.verb} ${path} on ${host.name}: ${subject.path} holds ${what}, and nothing tells the inventory's cluster's system identifier to compare it with (neither the primary's pg_control nor another database host's facts)`,
    hint:
      `if ${host.name}'s pgdata is right and its data really is to be replaced, ask for exactly this host to be rebuilt ` +
      `(standby-from-backup.yml -p host=${host.name} -p rebuild=true; the step's replace: true); otherwise correct pgdata in the inventory`,
  });
}

/**
 * Before a file (anything but a directory) is removed: it must not lie inside another inventory host's
 * PGDATA (a pg_control, a WAL segment, postmaster.pid of a server a step on this host does not own), by
 * the inventory's paths or in fact: the real path of its directory, read on this host, inside the real
 * path of a directory that is another host's PGDATA.
 */
export async function guardFileRemoval(ctx: ActionContext, path: string, as?: string | null): Promise<void> {
  const req = { verb: 'remove', as };
  const file = normalPath(path);
  const others = otherPgdataHosts(ctx);
  refuseByInventory(ctx, req, file, others, false);
  if (others.length === 0) return;
  const { here, ordered, theirs, ancestors } = await readWithOthers(ctx, others, [posix.dirname(file)], false, as, posix.dirname(file));
  const dir = here[0]!;
  if (!dir.known) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to remove ${file} on ${ctx.host.name}: cannot tell which directory holds it (${dir.error})`,
      hint: `${as === null ? 'the login user' : (as ?? ctx.host.postgres.osUser)} must be able to read the directory`,
    });
  }
  if (!dir.directory || !dir.real) return;
  refuseAncestorPgdata(ctx, req, file, [dir, ...ancestors], ordered, theirs);
  refuseRealPathInside(ctx, req, file, posix.join(dir.real, posix.basename(file)), here.slice(1), ordered, theirs);
}

/**
 * Before a step writes at a path (a file's content, mode or owner, a directory, a link): by the inventory's
 * paths, it is not another host's PGDATA nor inside it, on a machine the two may share (no process: the
 * in-fact reads guard only what is removed or replaced, guardFileRemoval and guardDestruction).
 */
export function refuseWriteIntoOtherPgdata(ctx: ActionContext, path: string): void {
  refuseByInventory(ctx, { verb: 'write' }, normalPath(path), otherPgdataHosts(ctx), false);
}

type OtherHost = Host & { pgdata: string };

/** The inventory's other hosts with a data directory. */
function otherPgdataHosts(ctx: ActionContext): OtherHost[] {
  return Object.values(ctx.hosts).filter((h): h is OtherHost => h.name !== ctx.host.name && h.pgdata !== undefined);
}

/**
 * The inventory's word first: it needs no host to answer. A host that may share this machine must not
 * have its PGDATA at the path or inside it (`contains`: a directory's removal takes what is inside), nor
 * the path inside its PGDATA.
 */
function refuseByInventory(ctx: ActionContext, req: Pick<DestructionRequest, 'verb'>, path: string, others: OtherHost[], contains: boolean): void {
  for (const other of others) {
    if (!maySameMachine(ctx.host, other)) continue;
    const theirs = normalPath(other.pgdata);
    if (theirs === path) throw sharedDirectory(ctx, req, path, other, 'is', 'by the inventory: the same machine and path');
    if (contains && within(theirs, path)) throw sharedDirectory(ctx, req, path, other, 'contains', 'by the inventory: the same machine and path');
    if (within(path, theirs)) throw sharedDirectory(ctx, req, path, other, 'lies inside', 'by the inventory: the same machine and path');
  }
}

/**
 * One identity read on this host of `leading`, of where the other hosts' PGDATA paths lead here and of
 * the directories above `ancestorsOf`, and at the same time each other host's own read of its PGDATA
 * (reads only; ownIdentity never rejects): one round trip before every stop and restore. A host that
 * sees its PGDATA as this read does (sameView) is answered by it, the primary first. `readWhole`: the
 * leading paths and the primary's PGDATA are read whole (pg_control: the cluster's system identifier),
 * else only which directory each is. `ordered`: the other hosts in the order of `here`'s paths after
 * `leading`, and `theirs`: what each says its PGDATA is.
 */
async function readWithOthers(
  ctx: ActionContext,
  others: OtherHost[],
  leading: string[],
  readWhole: boolean,
  as: string | null | undefined,
  ancestorsOf: string,
): Promise<{ here: DirectoryIdentity[]; ordered: OtherHost[]; theirs: Array<DirectoryIdentity | undefined>; ancestors: DirectoryIdentity[] }> {
  const host = ctx.host;
  const readAs = as === null ? undefined : (as ?? host.postgres.osUser);
  const answeredHere = (o: Host) => sameView(host, o, readAs);
  const ordered = [
    ...others.filter((o) => answeredHere(o) && o.role === 'primary'),
    ...others.filter((o) => answeredHere(o) && o.role !== 'primary'),
    ...others.filter((o) => !answeredHere(o)),
  ];
  const above = ancestorPaths(ancestorsOf);
  const paths = [...leading, ...ordered.map((o) => normalPath(o.pgdata)), ...above];
  const asked = Promise.all(ordered.map((o) => (answeredHere(o) ? undefined : ownIdentity(ctx, o, readWhole))));
  // Whole only the leading paths and a primary answered here (first of the others): of the rest only which directory each is (their keys).
  const primaryHere = ordered[0] !== undefined && answeredHere(ordered[0]) && ordered[0].role === 'primary';
  const here = await readIdentities(ctx, host, paths, as, readWhole ? leading.length + (primaryHere ? 1 : 0) : 0);
  const askedThere = await asked;
  const seenHere = here.slice(leading.length, leading.length + ordered.length);
  const theirs = ordered.map((o, i) => (answeredHere(o) ? seenAsTheirs(ctx, o, seenHere[i]) : askedThere[i]));
  return { here, ordered, theirs, ancestors: here.slice(leading.length + ordered.length) };
}

/** Every directory above `path` (normalised, absolute), nearest first, `/` left out. */
function ancestorPaths(path: string): string[] {
  const out: string[] = [];
  for (let p = posix.dirname(path); p !== '/' && p !== '.'; p = posix.dirname(p)) out.push(p);
  return out;
}

/**
 * A directory above the path that is another host's PGDATA, by its key (the directory each ancestor path
 * leads to, links followed): the path lies inside that PGDATA whatever it is called here (a link, or a
 * bind mount of it under another name, as a container's data directory is on its host).
 */
function refuseAncestorPgdata(ctx: ActionContext, req: Pick<DestructionRequest, 'verb'>, path: string, ancestors: DirectoryIdentity[], ordered: OtherHost[], theirs: Array<DirectoryIdentity | undefined>): void {
  ordered.forEach((other, i) => {
    const key = theirs[i]?.key;
    const above = key ? ancestors.find((a) => a.key === key) : undefined;
    if (above) throw sharedDirectory(ctx, req, path, other, 'lies inside', `${above.path} is ${other.name}'s PGDATA, the same directory on the same machine`);
  });
}

/**
 * `real` (what is about to go, every link resolved on this host) lies inside a directory that is another
 * host's PGDATA: the real path `seenHere` found for it, that host's own read having the same key.
 */
function refuseRealPathInside(
  ctx: ActionContext,
  req: Pick<DestructionRequest, 'verb'>,
  path: string,
  real: string,
  seenHere: DirectoryIdentity[],
  ordered: OtherHost[],
  theirs: Array<DirectoryIdentity | undefined>,
): void {
  ordered.forEach((other, i) => {
    const their = theirs[i];
    const visible = seenHere[i]!;
    if (!their?.key || visible.key !== their.key || !visible.real) return;
    if (within(real, visible.real)) throw sharedDirectory(ctx, req, path, other, 'lies inside', `it is ${real}, and ${other.name}'s PGDATA is ${visible.real} on this machine`);
  });
}

/**
 * rebuild replaces another cluster only when it holds nothing a user made (a freshly created cluster:
 * see postgres/user-data.ts); one with user data only when the user named its system identifier too.
 */
export async function guardUserData(ctx: ActionContext, req: Pick<DestructionRequest, 'verb' | 'replaceSysid' | 'as'>, pgdata: string, sysid: string, what: string): Promise<void> {
  const host = ctx.host;
  const r = await ctx.transport.exec(userDataArgv(pgdata), {
    become: req.as === null ? undefined : (req.as ?? host.postgres.osUser),
    cwd: '/',
    env: { LC_ALL: 'C' },
    signal: ctx.signal,
    timeoutMs: 60_000,
  });
  if (r.exitCode !== 0) {
    throw new PgplayError({
      code: 'GUARD',
      message: `refusing to ${req.verb} ${pgdata} on ${host.name}: cannot tell whether ${what} holds user data (${r.stderr.trim() || `exit code ${r.exitCode}`})`,
      hint: `${host.postgres.osUser} must be able to read ${pgdata}`,
    });
  }
  const found = parseUserData(r.stdout);
  if (!holdsUserData(found)) {
    ctx.log(`${pgdata} holds no user data (no database, relation or tablespace made after initdb): a freshly created cluster`);
    return;
  }
  if (req.replaceSysid === sysid) {
    ctx.log(`${pgdata} holds user data (${describeUserData(found)}); replacing it as asked by replace_sysid ${sysid}`);
    return;
  }
  throw new PgplayError({
    code: 'GUARD',
    message:
      `refusing to ${req.verb} ${pgdata} on ${host.name}: it holds ${what} with user data: ${describeUserData(found)}. ` +
      `rebuild replaces only a freshly created cluster` +
      (req.replaceSysid ? `; replace_sysid ${req.replaceSysid} is not its system identifier` : ''),
    hint:
      `back up what you need from it; if its data really is to be destroyed, name that cluster: ` +
      `standby-from-backup.yml -p host=${host.name} -p rebuild=true -p replace_sysid=${sysid}`,
  });
}

function sharedDirectory(ctx: ActionContext, req: Pick<DestructionRequest, 'verb'>, path: string, other: OtherHost, how: 'is' | 'contains' | 'lies inside', why: string): PgplayError {
  const whose = other.role === 'primary' ? `the primary ${other.name}'s PGDATA` : `${other.role} ${other.name}'s PGDATA`;
  return new PgplayError({
    code: 'GUARD',
    message: `refusing to ${req.verb} ${path} on ${ctx.host.name}: it ${how} ${whose} (${other.pgdata} on ${other.address}; ${why})`,
    hint:
      how === 'lies inside' || req.verb === 'write'
        ? `what lies in ${other.name}'s data directory is never removed, replaced or written by a step on another host: run it on ${other.name} if that is what is meant, or correct the path (no option lifts this refusal)`
        : `two inventory hosts never share a data directory: give ${ctx.host.name} a pgdata of its own (no option lifts this refusal)`,
  });
}

async function readIdentities(ctx: ActionContext, host: Host, paths: string[], as?: string | null, whole = paths.length): Promise<DirectoryIdentity[]> {
  const transport = host.name === ctx.host.name ? ctx.transport : ctx.transportFor(host.name);
  const r = await transport.exec(identityArgv(host.postgres.bindir, paths, whole), {
    become: as === null ? undefined : (as ?? host.postgres.osUser),
    cwd: '/',
    env: { LC_ALL: 'C' },
    signal: ctx.signal,
    timeoutMs: 60_000,
  });
  return parseIdentities(r.stdout, paths);
}

/**
 * Whether `other` sees its PGDATA as this host's read (as `readAs`) does: both on the local transport
 * (the machine and mount namespace pgplay runs in) and that read made as the user `other`'s own read
 * would be. Its identity is then taken from this host's read instead of a command of its own: the same
 * directory key, real path and pg_control, one process where the lab's three hosts started three
 * before every stop, restore and removal.
 */
function sameView(host: Host, other: Host, readAs: string | undefined): boolean {
  return host.connection.transport === 'local' && other.connection.transport === 'local' && readAs !== undefined && readAs === other.postgres.osUser;
}

/** What ownIdentity would have answered for a host answered by this host's read. */
function seenAsTheirs(ctx: ActionContext, other: Host, seen: DirectoryIdentity | undefined): DirectoryIdentity | undefined {
  if (ctx.factsIfRead(other.name)?.reachable === false) return undefined;
  return seen?.known ? seen : undefined;
}

/**
 * Another host's PGDATA as that host sees it; undefined when it cannot be asked (the inventory's word
 * stands). Its key tells whether it is the target; the primary's is read whole (readWhole), its
 * pg_control being the inventory's cluster's identifier (clusterIdentity).
 */
async function ownIdentity(ctx: ActionContext, other: Host & { pgdata: string }, readWhole: boolean): Promise<DirectoryIdentity | undefined> {
  if (ctx.factsIfRead(other.name)?.reachable === false) return undefined;
  try {
    const [id] = await readIdentities(ctx, other, [normalPath(other.pgdata)], undefined, readWhole && other.role === 'primary' ? 1 : 0);
    return id?.known ? id : undefined;
  } catch (e) {
    ctx.log(`cannot read ${other.name}'s PGDATA identity: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

/**
 * The inventory's cluster's system identifier: the primary's, read now (its pg_control, with its PGDATA's
 * identity; else its facts: SQL when it runs, else pg_control), else what the facts gathered from another
 * database host said.
 */
async function clusterIdentity(
  ctx: ActionContext,
  others: Array<Host & { pgdata: string }>,
  theirs: Array<DirectoryIdentity | undefined>,
): Promise<ClusterReference | undefined> {
  const at = others.findIndex((o) => o.role === 'primary');
  const primary = others[at];
  // The primary's pg_control, read on the primary a moment ago with its PGDATA's identity: the same
  // system identifier its facts would report, without a second round trip.
  const read = primary ? theirs[at]?.systemIdentifier : undefined;
  if (primary && read) return { systemIdentifier: read, from: `the primary ${primary.name}` };
  if (primary && ctx.factsIfRead(primary.name)?.reachable !== false) {
    try {
      const r = await ctx.transportFor(primary.name).exec(factsArgv(primary), { become: primary.postgres.osUser, cwd: '/', signal: ctx.signal, timeoutMs: 60_000 });
      const sysid = parseFacts(r.stdout).system_identifier;
      if (sysid) return { systemIdentifier: sysid, from: `the primary ${primary.name}` };
    } catch (e) {
      ctx.log(`cannot read the primary ${primary.name}'s facts: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  for (const o of others) {
    if (o.role !== 'primary' && o.role !== 'standby') continue;
    const sysid = ctx.factsIfRead(o.name)?.system_identifier;
    if (sysid) return { systemIdentifier: sysid, from: `${o.role} ${o.name}` };
  }
  return undefined;
}

/**
 * pgBackRest's practice before a restore: remove global/pg_control first (and sync its directory), so
 * a copy or removal that stops half-way leaves a directory that cannot be started as a cluster.
 */
export async function disarm(ctx: ActionContext, pgdata: string): Promise<void> {
  const control = `${normalPath(pgdata)}/global/pg_control`;
  const r = await ctx.transport.exec(['/bin/sh', '-c', 'rm -f -- "$1" && sync -- "${1%/*}" 2>/dev/null; [ ! -e "$1" ]', 'pgplay-disarm', control], {
    become: ctx.host.postgres.osUser,
    cwd: '/',
    env: { LC_ALL: 'C' },
    signal: ctx.signal,
    timeoutMs: 60_000,
  });
  if (r.exitCode !== 0) {
    throw new PgplayError({ code: 'STEP_FAILED', message: `cannot remove ${control} before replacing the cluster: ${r.stderr.trim() || `exit code ${r.exitCode}`}` });
  }
  ctx.log(`removed ${control} first, so a half-done replacement cannot be started`);
}
