/**
 * Meaning checks of an inventory that already matches its schema (checkInventory). Apart from semantic.ts
 * so that a run reads its inventory, and starts its early connections (app/early-connect.ts), before the
 * playbook's checkers and the expression language are loaded.
 */
import type { PgplayError } from '../core/errors.js';
import { ROLES, type Inventory, type Layout } from '../model/inventory.js';
import { DEBIAN_DEFAULT_PGDATA_ROLES, DEFAULT_LAYOUT } from '../postgres/layout.js';
import { PGBACKREST_CONFIG_PATH } from '../postgres/pgbackrest-config.js';
import { didYouMean } from '../schema/describe.js';
import { isTemplated } from '../schema/templated.js';
import { maySameMachine, normalPath, within } from '../postgres/same-directory.js';
import { resolveHosts } from './hosts.js';
import { checkBarmanInventory } from './barman-semantic.js';
import type { DocPath, LoadedDocument } from './yaml.js';
import { collector, type Emit } from './semantic-errors.js';

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

