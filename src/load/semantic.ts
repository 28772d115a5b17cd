import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { PgplayError } from '../core/errors.js';
import { RESERVED_NAMES } from '../model/scope-names.js';
import { parseExpression } from '../expr/index.js';
import { ROLES, type Inventory, type Layout } from '../model/inventory.js';
import { DEBIAN_DEFAULT_PGDATA_ROLES, DEFAULT_LAYOUT } from '../postgres/layout.js';
import { PGBACKREST_CONFIG_PATH } from '../postgres/pgbackrest-config.js';
import { INCLUDE_KEY, STEP_KEYS, type ParamDef, type Playbook } from '../model/playbook.js';
import { didYouMean } from '../schema/describe.js';
import { isTemplated } from '../schema/templated.js';
import { maySameMachine, normalPath, within } from '../postgres/identity.js';
import { describeHostChoices, resolveHosts } from './hosts.js';
import { checkParamValue } from './params.js';
import { checkBarmanInventory } from './barman-semantic.js';
import type { DocPath, LoadedDocument } from './yaml.js';

type Emit = (path: DocPath, message: string, extra?: { expected?: string; hint?: string; part?: 'key' | 'value' }) => void;

function collector(doc: LoadedDocument, code: 'SEMANTIC' | 'SCHEMA' = 'SEMANTIC'): { errors: PgplayError[]; emit: Emit } {
  const errors: PgplayError[] = [];
  const emit: Emit = (path, message, extra = {}) =>
    errors.push(
      new PgplayError({
        code,
        message,
        expected: extra.expected,
        hint: extra.hint,
        position: doc.position(path, extra.part ?? 'value'),
      }),
    );
  return { errors, emit };
}

const NEEDS_PGDATA = new Set(['primary', 'standby', 'drill']);

/** Meaning checks of an inventory that already matches its schema. */
export function checkInventory(doc: LoadedDocument<Inventory>): PgplayError[] {
  const { errors, emit } = collector(doc);
  const inv = doc.data;
  const names = Object.keys(inv.hosts);
  const hostList = `a host name (${names.join(', ')})`;

  for (const name of names) {
    if ((ROLES as readonly string[]).includes(name) || name === 'all') {
      emit(['hosts', name], `"${name}" cannot be a host name: host patterns use it for ${name === 'all' ? 'every host' : 'a role'}`, {
        part: 'key',
        expected: 'a name that is not all, primary, standby, repository or drill',
      });
    }
  }

  const primaries = names.filter((n) => inv.hosts[n]!.role === 'primary');
  if (primaries.length === 0) {
    emit(['hosts'], 'no host has role primary', { part: 'key', expected: 'exactly one host with role: primary' });
  }
  for (const extra of primaries.slice(1)) {
    emit(['hosts', extra, 'role'], `"${extra}" is a second primary ("${primaries[0]}" is already primary)`, {
      expected: 'exactly one host with role: primary',
    });
  }

  for (const name of names) {
    const h = inv.hosts[name]!;
    if (NEEDS_PGDATA.has(h.role) && h.pgdata === undefined && !(layoutOf(inv, name) === 'debian' && DEBIAN_DEFAULT_PGDATA_ROLES.has(h.role))) {
      emit(['hosts', name], `${h.role} "${name}" has no pgdata`, {
        expected: 'pgdata: the data directory of this host',
        ...(h.role === 'drill' && layoutOf(inv, name) === 'debian'
          ? { hint: "a drill's pgdata is never defaulted to the package's cluster: the drill replaces it with a restored copy" }
          : {}),
      });
    }
    if (h.role === 'standby' && h.upstream === undefined) {
      emit(['hosts', name], `standby "${name}" has no upstream`, { expected: `upstream: the host it streams from (${primaries[0] ?? 'the primary'} or another standby)` });
    }
    if (h.upstream === undefined) continue;
    const at = ['hosts', name, 'upstream'];
    if (h.role !== 'standby') {
      emit(at, `"${name}" is a ${h.role}; only a standby has an upstream`);
    } else if (h.upstream === name) {
      emit(at, `standby "${name}" cannot be its own upstream`, { expected: 'another host: the primary or a standby' });
    } else if (!(h.upstream in inv.hosts)) {
      const guess = didYouMean(h.upstream, names);
      emit(at, `upstream "${h.upstream}" of "${name}" is not a host of this inventory${guess ? `; did you mean "${guess}"?` : ''}`, {
        expected: hostList,
      });
    } else {
      const up = inv.hosts[h.upstream]!;
      if (up.role !== 'primary' && up.role !== 'standby') {
        emit(at, `upstream "${h.upstream}" of "${name}" is a ${up.role}, not a primary or standby`);
      }
    }
  }
  checkPaths(inv, emit);
  checkSharedMachines(inv, emit);

  for (const cycle of upstreamCycles(inv)) {
    emit(['hosts', cycle[0]!, 'upstream'], `upstream cycle: ${[...cycle, cycle[0]].join(' -> ')}`, {
      expected: 'a chain of upstreams that ends at the primary',
    });
  }

  checkLayouts(inv, emit);
  checkServices(inv, emit);

  const repoHost = inv.backup?.repoHost;
  if (repoHost !== undefined && !(repoHost in inv.hosts)) {
    const guess = didYouMean(repoHost, names);
    emit(['backup', 'repoHost'], `repoHost "${repoHost}" is not a host of this inventory${guess ? `; did you mean "${guess}"?` : ''}`, {
      expected: hostList,
    });
  }

  // A setting that cannot take effect is an error, not silently ignored.
  if (inv.backup?.fromStandby === true) {
    const at = ['backup', 'fromStandby'];
    if (inv.backup.tool !== 'pgbackrest') {
      emit(at, `backup.fromStandby cannot take effect with backup.tool ${inv.backup.tool}: only pgBackRest backs up from a standby`, {
        expected: 'fromStandby: false, or tool: pgbackrest',
      });
    } else if (repoHost === undefined) {
      emit(at, 'backup.fromStandby cannot take effect without backup.repoHost: pgBackRest copies from a standby only when it runs on a repository host', {
        expected: 'backup.repoHost: the host that holds the repository (role repository)',
      });
    }
    if (!names.some((n) => inv.hosts[n]!.role === 'standby')) {
      emit(at, 'backup.fromStandby cannot take effect: the inventory has no standby to copy from', { expected: 'a host with role: standby, or fromStandby: false' });
    }
  }

  checkBarmanInventory(inv, emit);

  const jumps: Array<{ path: DocPath; jump: string; self?: string }> = [];
  if (inv.connection?.jump) jumps.push({ path: ['connection', 'jump'], jump: inv.connection.jump });
  for (const name of names) {
    const jump = inv.hosts[name]!.connection?.jump;
    if (jump) jumps.push({ path: ['hosts', name, 'connection', 'jump'], jump, self: name });
  }
  for (const { path, jump, self } of jumps) {
    // user@host, host:port and dotted names/addresses are outside hosts; a bare word means an inventory host.
    if (/[@:.]/.test(jump)) continue;
    if (jump === self) emit(path, `"${self}" cannot jump through itself`);
    else if (!(jump in inv.hosts)) {
      const guess = didYouMean(jump, names);
      emit(path, `jump host "${jump}" is not a host of this inventory${guess ? `; did you mean "${guess}"?` : ''}`, {
        expected: hostList,
        hint: 'to jump through a machine outside the inventory, write user@address',
      });
    }
  }
  return errors;
}

function layoutOf(inv: Inventory, host: string): Layout {
  return inv.hosts[host]!.postgres?.layout ?? inv.postgres.layout ?? DEFAULT_LAYOUT;
}

/** `postgres.cluster` names a Debian cluster: set where no host uses layout debian, it would be ignored. */
function checkLayouts(inv: Inventory, emit: Emit): void {
  const names = Object.keys(inv.hosts);
  const expected = 'postgres.cluster only with layout: debian';
  for (const name of names) {
    if (inv.hosts[name]!.postgres?.cluster !== undefined && layoutOf(inv, name) !== 'debian') {
      emit(['hosts', name, 'postgres', 'cluster'], `"${name}" uses layout pgdata, which has no Debian cluster name`, { expected, part: 'key' });
    }
  }
  if (inv.postgres.cluster !== undefined && !names.some((n) => inv.hosts[n]!.postgres?.cluster === undefined && layoutOf(inv, n) === 'debian')) {
    emit(['postgres', 'cluster'], 'no host takes this Debian cluster name: none uses layout debian without its own cluster', { expected, part: 'key' });
  }
}

/**
 * pg_ctlcluster only runs clusters under /etc/postgresql (layout debian), and a serviceUnit only means
 * something to systemd: either elsewhere would be a key the engine ignores.
 */
function checkServices(inv: Inventory, emit: Emit): void {
  const serviceOf = (name: string) => inv.hosts[name]!.postgres?.service ?? inv.postgres.service;
  for (const name of Object.keys(inv.hosts)) {
    const own = inv.hosts[name]!.postgres;
    if (serviceOf(name) === 'pg_ctlcluster' && layoutOf(inv, name) !== 'debian' && NEEDS_PGDATA.has(inv.hosts[name]!.role)) {
      emit(own?.service !== undefined ? ['hosts', name, 'postgres', 'service'] : ['postgres', 'service'], `"${name}" uses layout pgdata, which pg_ctlcluster cannot run (it runs the clusters of /etc/postgresql)`, {
        expected: 'service pg_ctlcluster only with layout: debian; pg_ctl or systemd otherwise',
      });
    }
    if (own?.serviceUnit !== undefined && serviceOf(name) !== 'systemd') {
      emit(['hosts', name, 'postgres', 'serviceUnit'], `"${name}" does not use service systemd, so its serviceUnit would be ignored`, { expected: 'serviceUnit only with service: systemd', part: 'key' });
    }
  }
  const names = Object.keys(inv.hosts);
  if (inv.postgres.serviceUnit !== undefined && !names.some((n) => serviceOf(n) === 'systemd')) {
    emit(['postgres', 'serviceUnit'], 'no host uses service systemd, so serviceUnit would be ignored', { expected: 'serviceUnit only with service: systemd', part: 'key' });
  }
}

/** Paths used on the hosts are absolute: a relative one would depend on the directory a command starts in. */
function checkPaths(inv: Inventory, emit: Emit): void {
  const absolute = (path: DocPath, value: unknown, what: string) => {
    if (typeof value === 'string' && !value.startsWith('/') && !isTemplated(value)) {
      emit(path, `${what} "${value}" is a relative path`, { expected: `an absolute path, e.g. /${value.replace(/^\.?\/*/, '')}` });
    }
  };
  for (const key of ['bindir', 'socketDir'] as const) absolute(['postgres', key], inv.postgres[key], `postgres.${key}`);
  absolute(['backup', 'repoPath'], inv.backup?.repoPath, 'backup.repoPath');
  for (const [name, h] of Object.entries(inv.hosts)) {
    absolute(['hosts', name, 'pgdata'], h.pgdata, `pgdata of "${name}"`);
    for (const key of ['bindir', 'socketDir'] as const) absolute(['hosts', name, 'postgres', key], h.postgres?.[key], `postgres.${key} of "${name}"`);
    pgbackrestConfig(['hosts', name, 'vars', 'pgbackrest_config'], h.vars?.pgbackrest_config, `vars.pgbackrest_config of "${name}"`);
  }
  pgbackrestConfig(['vars', 'pgbackrest_config'], inv.vars?.pgbackrest_config, 'vars.pgbackrest_config');
  // With the basebackup engine the repository path is in archive_command and restore_command too.
  if (inv.backup?.tool === 'basebackup') pgbackrestConfig(['backup', 'repoPath'], inv.backup.repoPath, 'backup.repoPath (with tool basebackup)', '/var/lib/pgplay/backups');

  // It ends up inside archive_command and restore_command (shell words in a quoted postgresql.conf value).
  function pgbackrestConfig(path: DocPath, value: unknown, what: string, example = '/etc/pgbackrest/pgbackrest.conf'): void {
    if (value === undefined || (typeof value === 'string' && isTemplated(value))) return;
    if (typeof value !== 'string' || !PGBACKREST_CONFIG_PATH.test(value)) {
      emit(path, `${what} ${JSON.stringify(value)} is not an absolute path of plain characters`, {
        expected: `an absolute path of letters, digits and . _ + - /, e.g. ${example}`,
      });
    }
  }
}

/**
 * Two hosts that may be one machine (the same address, or both on the local transport) cannot share a
 * data directory (or nest one inside the other), and two hosts at one address cannot share a port: a
 * playbook acting on one would stop, restore over or remove the other. Reported at the later host.
 */
function checkSharedMachines(inv: Inventory, emit: Emit): void {
  const hosts = Object.values(resolveHosts(inv)).filter((h) => h.pgdata !== undefined && h.pgdata.startsWith('/'));
  hosts.forEach((h, i) => {
    for (const earlier of hosts.slice(0, i)) {
      if (!maySameMachine(h, earlier)) continue;
      const [mine, theirs] = [normalPath(h.pgdata!), normalPath(earlier.pgdata!)];
      const where = h.address === earlier.address ? `the same address (${h.address})` : 'the same machine (both use the local transport)';
      if (within(mine, theirs) || within(theirs, mine)) {
        const how = mine === theirs ? `the same pgdata (${mine})` : `nested data directories (${mine} and ${theirs})`;
        emit(['hosts', h.name, 'pgdata'], `"${h.name}" and "${earlier.name}" have ${where} and ${how}: one host's playbook would destroy the other's data`, {
          expected: 'a data directory of its own for each host on one machine',
        });
        break;
      }
      if (h.address === earlier.address && h.postgres.port === earlier.postgres.port) {
        const at: DocPath = inv.hosts[h.name]!.postgres?.port !== undefined ? ['hosts', h.name, 'postgres', 'port'] : ['hosts', h.name, 'address'];
        emit(at, `"${h.name}" and "${earlier.name}" have the same address (${h.address}) and port (${h.postgres.port})`, {
          expected: 'a port of its own for each PostgreSQL server at one address',
        });
        break;
      }
    }
  });
}

/** Standby chains that loop back on themselves, each reported once, starting at its first host in inventory order. */
function upstreamCycles(inv: Inventory): string[][] {
  const cycles: string[][] = [];
  const inCycle = new Set<string>();
  for (const start of Object.keys(inv.hosts)) {
    if (inCycle.has(start)) continue;
    const chain: string[] = [];
    let cur: string | undefined = start;
    while (cur !== undefined && inv.hosts[cur]?.role === 'standby' && !chain.includes(cur)) {
      chain.push(cur);
      const next: string | undefined = inv.hosts[cur]!.upstream;
      cur = next === cur ? undefined : next;
    }
    if (cur === undefined || !chain.includes(cur) || inCycle.has(cur)) continue;
    const loop = chain.slice(chain.indexOf(cur));
    const names = Object.keys(inv.hosts);
    const first = loop.reduce((a, b) => (names.indexOf(b) < names.indexOf(a) ? b : a));
    const rotated = [...loop.slice(loop.indexOf(first)), ...loop.slice(0, loop.indexOf(first))];
    rotated.forEach((n) => inCycle.add(n));
    cycles.push(rotated);
  }
  return cycles;
}

interface StepLike {
  where: DocPath;
  label: string;
  body: Record<string, unknown>;
}

export function stepsOf(data: unknown): StepLike[] {
  const pb = (data ?? {}) as { steps?: unknown; handlers?: unknown };
  const out: StepLike[] = [];
  if (Array.isArray(pb.steps)) {
    pb.steps.forEach((s, i) => {
      if (!s || typeof s !== 'object' || Array.isArray(s)) return;
      const id = (s as Record<string, unknown>).id;
      out.push({ where: ['steps', i], label: `step ${typeof id === 'string' ? id : `#${i + 1}`}`, body: s as Record<string, unknown> });
    });
  }
  if (pb.handlers && typeof pb.handlers === 'object' && !Array.isArray(pb.handlers)) {
    for (const [name, h] of Object.entries(pb.handlers)) {
      if (h && typeof h === 'object' && !Array.isArray(h)) out.push({ where: ['handlers', name], label: `handler ${name}`, body: h as Record<string, unknown> });
    }
  }
  return out;
}

/**
 * Exactly one action per step and handler. Checked here rather than as a schema oneOf, which would
 * report one error per action. A step holding an unknown key is left to the schema's "unknown key"
 * error: that key is most likely the misspelt action.
 */
export function checkActionKeys(doc: LoadedDocument, actions: ReadonlyArray<string>): PgplayError[] {
  const { errors, emit } = collector(doc, 'SCHEMA');
  const common = new Set<string>(STEP_KEYS);
  for (const { where, label, body } of stepsOf(doc.data)) {
    const keys = Object.keys(body);
    // A step may hold an include instead of an action; a handler may not (see handlerIncludes).
    const actionNames = where[0] === 'steps' ? [...actions, INCLUDE_KEY] : actions;
    const found = keys.filter((k) => actionNames.includes(k));
    if (found.length === 0) {
      if (keys.some((k) => !common.has(k))) continue;
      emit(where, `${label} has no action`, {
        expected: actionNames.length ? `one of ${actionNames.join(', ')}` : 'an action, but none is registered',
      });
    } else if (found.length > 1) {
      emit([...where, found[1]!], `${label} has more than one action: ${found.join(', ')}`, {
        part: 'key',
        expected: 'exactly one action per step; split it into several steps',
      });
    }
  }
  return errors;
}

/**
 * Handlers run one action on the hosts that notified them; an include is a sequence of steps with
 * hosts of their own, so a handler cannot hold one. Reported here, at the key, in place of the
 * schema's plain "unknown key".
 */
export function handlerIncludes(doc: LoadedDocument): PgplayError[] {
  const { errors, emit } = collector(doc, 'SCHEMA');
  for (const { where, label, body } of stepsOf(doc.data)) {
    if (where[0] !== 'handlers' || !(INCLUDE_KEY in body)) continue;
    emit([...where, INCLUDE_KEY], `${label}: include cannot run as a handler`, {
      part: 'key',
      expected: 'one action in a handler',
      hint: 'put the included steps in a step with `when:` (or notify a handler per action they take)',
    });
  }
  return errors;
}

export interface PlaybookCheckOptions {
  /** Inventory the playbook will run against; without one, host names cannot be checked. */
  inventory?: Inventory;
  /** Directories searched for `template: {src}`; default: templates/ beside the playbook, the playbook's dir, the shipped templates. */
  templateDirs?: string[];
}

/** Meaning checks of a playbook that already matches its schema. */
export function checkPlaybook(doc: LoadedDocument<Playbook>, options: PlaybookCheckOptions = {}): PgplayError[] {
  const { errors, emit } = collector(doc);
  const pb = doc.data;
  const playbookDir = dirname(resolve(doc.file));
  const templateDirs = options.templateDirs ?? [resolve(playbookDir, 'templates'), playbookDir, SHIPPED_TEMPLATES];

  const firstId = new Map<string, number>();
  pb.steps.forEach((step, i) => {
    const seen = firstId.get(step.id);
    if (seen === undefined) firstId.set(step.id, i);
    else {
      const line = doc.position(['steps', seen, 'id']).line;
      emit(['steps', i, 'id'], `duplicate step id "${step.id}" (first used at line ${line})`, { expected: 'a step id unique in the playbook' });
    }
  });

  for (const [name, def] of Object.entries(pb.params ?? {})) checkParamDef(emit, name, def, pb.params ?? {});

  const handlers = Object.keys(pb.handlers ?? {});
  for (const { where, label, body } of stepsOf(pb)) {
    if (options.inventory && body.hosts !== undefined) checkStepHosts(emit, [...where, 'hosts'], body.hosts, options.inventory);

    if (Array.isArray(body.notify)) {
      body.notify.forEach((n: unknown, j: number) => {
        if (typeof n !== 'string' || handlers.includes(n)) return;
        const guess = didYouMean(n, handlers);
        emit([...where, 'notify', j], `${label} notifies unknown handler "${n}"${guess ? `; did you mean "${guess}"?` : ''}`, {
          expected: handlers.length ? `one of ${handlers.join(', ')}` : 'a handler defined under handlers:',
        });
      });
    }

    if (typeof body.register === 'string' && (RESERVED_NAMES as readonly string[]).includes(body.register)) {
      emit([...where, 'register'], `"${body.register}" is reserved and cannot be a register name`, {
        expected: `a name other than ${RESERVED_NAMES.join(', ')}`,
      });
    }

    for (const key of ['when', 'until'] as const) {
      const expr = body[key];
      if (typeof expr !== 'string') continue;
      try {
        parseExpression(expr);
      } catch (e) {
        if (!(e instanceof PgplayError)) throw e;
        emit([...where, key], `${label}: ${key}: ${e.message}`, { expected: e.expected, hint: e.hint });
      }
    }

    const template = body.template as { src?: unknown } | undefined;
    if (template && typeof template.src === 'string' && !isTemplated(template.src)) {
      checkTemplateSrc(emit, [...where, 'template', 'src'], template.src, templateDirs);
    }

    if (body.loop !== undefined && INCLUDE_KEY in body && body.hosts === undefined) {
      emit([...where, 'loop'], `${label}: a looped include needs hosts (its loop is rendered on them)`, {
        part: 'key',
        expected: 'hosts: the hosts whose facts and registered values the loop reads',
      });
    }

    // An include runs no action on a host itself: each included step decides for its own hosts.
    if (body.unreachable !== undefined && INCLUDE_KEY in body) {
      emit([...where, 'unreachable'], `${label}: unreachable applies to a step's action on its hosts, not to an include`, {
        part: 'key',
        expected: 'unreachable: tolerate on the included steps that may meet an unreachable host',
      });
    }

    if (body.rescue !== undefined && !(INCLUDE_KEY in body)) {
      emit([...where, 'rescue'], `${label}: rescue belongs on an include step (the section it puts back)`, {
        part: 'key',
        expected: 'include: the section, and rescue: the playbook that undoes it when the section fails',
      });
    }
    for (const key of [INCLUDE_KEY, 'rescue'] as const) {
      const include = body[key] as { playbook?: unknown } | undefined;
      if (include && typeof include.playbook === 'string' && !isTemplated(include.playbook)) {
        const target = resolve(playbookDir, include.playbook);
        if (!isFile(target)) {
          emit([...where, key, 'playbook'], `${key === INCLUDE_KEY ? 'included' : 'rescue'} playbook "${include.playbook}" not found`, {
            expected: 'a playbook file, relative to this playbook',
            hint: `looked for ${target}`,
          });
        }
      }
    }
  }
  return errors;
}

function checkParamDef(emit: Emit, name: string, def: ParamDef, all: Record<string, ParamDef>): void {
  const of = def.recovery_target_of;
  if (of !== undefined && all[of]?.type !== 'string') {
    emit(['params', name, 'recovery_target_of'], `recovery_target_of of param "${name}": ${all[of] ? `param "${of}" is not a string` : `no param "${of}"`}`, {
      expected: 'the name of the string param that holds the target type (latest, time, name, xid, lsn, immediate)',
    });
  }
  def.enum?.forEach((v, j) => {
    const problem = checkParamValue({ type: def.type }, v);
    if (problem) emit(['params', name, 'enum', j], `enum value ${JSON.stringify(v)} of param "${name}" ${problem.what}`, { expected: problem.expected });
  });
  if (def.default !== undefined) {
    const problem = checkParamValue(def, def.default);
    if (problem) emit(['params', name, 'default'], `default ${JSON.stringify(def.default)} of param "${name}" ${problem.what}`, { expected: problem.expected });
  }
}

function checkStepHosts(emit: Emit, path: DocPath, hosts: unknown, inv: Inventory): void {
  const names = Object.keys(inv.hosts);
  const known = new Set<string>([...names, ...ROLES, 'all']);
  const items: Array<{ path: DocPath; value: unknown }> = Array.isArray(hosts)
    ? hosts.map((value, j) => ({ path: [...path, j], value }))
    : [{ path, value: hosts }];
  for (const { path: at, value } of items) {
    if (typeof value !== 'string' || isTemplated(value)) continue;
    for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
      if (known.has(part)) continue;
      const guess = didYouMean(part, [...known]);
      emit(at, `unknown host or role "${part}" in hosts${guess ? `; did you mean "${guess}"?` : ''}`, {
        expected: describeHostChoices(names),
      });
    }
  }
}

function checkTemplateSrc(emit: Emit, path: DocPath, src: string, dirs: ReadonlyArray<string>): void {
  if (dirs.some((d) => isFile(resolve(d, src)))) return;
  const available = dirs.flatMap((d) => listFiles(d)).filter((f) => f.endsWith('.hbs'));
  const guess = didYouMean(src, available);
  emit(path, `template "${src}" not found${guess ? `; did you mean "${guess}"?` : ''}`, {
    expected: 'a file under templates/ beside the playbook, beside the playbook, or a shipped template',
    hint: `looked in ${dirs.join(', ')}`,
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
