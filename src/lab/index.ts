/**
 * `pgplay lab`: the embedded topology on this machine. `up` writes the lab's inventory and runs the
 * shipped playbooks/lab.yml against it (the lab is built by pgplay itself); `down` stops every lab
 * server by its pid and removes the directory; `status` reads each host's facts.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { PgplayError } from '../core/errors.js';
import { SHIPPED_PLAYBOOKS } from '../core/paths.js';
import { gatherFacts } from '../engine/facts.js';
import type { RunEvent } from '../engine/events.js';
import { runPlaybook } from '../app/run-playbook.js';
import { resolveHosts } from '../load/hosts.js';
import { loadInventory } from '../load/inventory.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { createTransport } from '../transports/index.js';
import { inventoryYaml, type LabPrimary } from './inventory.js';
import { stopLabBarman } from './barman.js';
import { BARMAN_PASSWORD_FILE, barmanPaths, hostPaths, LAB_HOSTS, REPLICATION_PASSWORD_FILE, repositoryPath } from './layout.js';
import { defaultLabDir, reconcile, resolveNewLab, type LabOptions, type LabRequest } from './options.js';
import { markerOptions, primaryFromFacts, setLabPrimary } from './roles.js';
import { stopServer, type ServerRef } from './servers.js';
import { labInventoryFile, readMarker, readPointer, removePointer, writeMarker, writePointer } from './state.js';

export const LAB_PLAYBOOK = join(SHIPPED_PLAYBOOKS, 'lab.yml');

export interface LabIo {
  env?: NodeJS.ProcessEnv;
  stateDir: string;
  signal?: AbortSignal;
  onEvent(event: RunEvent): void;
  warn?(message: string): void;
}

export interface LabUpResult {
  options: LabOptions;
  inventoryFile: string;
  exitCode: number;
  /** The lab did not exist before this call. */
  created: boolean;
}

/** The lab directory a down/status means: --dir, else the lab the pointer names, else the default. */
export async function labDirFor(dir: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (dir) return resolve(dir);
  const pointer = await readPointer(env);
  return pointer ? dirname(pointer) : defaultLabDir(env);
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/** PostgreSQL runs as osUser: it must be able to reach the lab directory through every ancestor. */
async function checkReachable(options: LabOptions): Promise<void> {
  if (!options.become) return;
  const r = await execa('runuser', ['-u', options.become, '--', 'test', '-x', options.dir], { reject: false });
  if (r.exitCode !== 0) {
    throw new PgplayError({
      code: 'USAGE',
      message: `the ${options.become} OS user cannot reach ${options.dir}: a directory above it is not searchable (e.g. /root is 0700)`,
      hint: 'choose a --dir the postgres user can traverse, such as /var/lib/pgplay-lab or a directory under /tmp',
    });
  }
}

async function osIds(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execa('id', ['-u', user])).stdout.trim());
  const gid = Number((await execa('id', ['-g', user])).stdout.trim());
  return { uid, gid };
}

/** The lab directory itself, the marker, the replication secret and the inventory: everything the playbook needs to start from. */
async function prepareDirectory(options: LabOptions, created: boolean, primary: LabPrimary): Promise<void> {
  await mkdir(options.dir, { recursive: true });
  // The host directories below are created by the playbook as the PostgreSQL OS user.
  const { uid, gid } = await osIds(options.osUser);
  await chown(options.dir, uid, gid);
  await chmod(options.dir, 0o755);
  await checkReachable(options);
  if (created) await writeMarker(options, new Date(), primary);

  const secret = join(options.dir, REPLICATION_PASSWORD_FILE);
  await mkdir(dirname(secret), { recursive: true, mode: 0o700 });
  await chmod(dirname(secret), 0o700);
  const secrets = [REPLICATION_PASSWORD_FILE, ...(options.backupTool === 'barman' ? [BARMAN_PASSWORD_FILE] : [])];
  for (const file of secrets.map((f) => join(options.dir, f))) {
    const existing = await readFile(file, 'utf8').catch(() => undefined);
    if (!existing) await writeFile(file, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
  }

  const inventory = labInventoryFile(options.dir);
  const text = inventoryYaml(options, primary);
  if ((await readFile(inventory, 'utf8').catch(() => undefined)) !== text) await writeFile(inventory, text, { mode: 0o644 });
}

export async function labUp(request: LabRequest, io: LabIo): Promise<LabUpResult> {
  const env = io.env ?? process.env;
  const dir = resolve(request.dir ?? defaultLabDir(env));
  const pointer = await readPointer(env);
  if (pointer && dirname(pointer) !== dir && (await readMarker(dirname(pointer)).catch(() => undefined))) {
    throw new PgplayError({
      code: 'GUARD',
      message: `a lab is already up in ${dirname(pointer)}`,
      hint: `pgplay lab down --dir ${dirname(pointer)} first, or give the second lab its own PGPLAY_STATE_DIR and --base-port`,
    });
  }
  const marker = await readMarker(dir);
  if (!marker && !(await isEmptyOrMissing(dir))) {
    throw new PgplayError({
      code: 'GUARD',
      message: `${dir} exists, is not empty and is not a pgplay lab`,
      hint: 'choose another --dir; pgplay builds a lab only in an empty or new directory',
    });
  }
  const options = marker ? reconcile(markerOptions(marker), { ...request, dir }) : await resolveNewLab({ ...request, dir }, env);
  if (options.backupNote && !marker) io.warn?.(`backups use pg_basebackup: ${options.backupNote}`);
  // After a promotion the lab follows the servers: whichever of db1 and db2 runs read-write is the primary.
  let primary: LabPrimary = marker?.primary ?? 'db1';
  if (marker) {
    const found = await primaryFromFacts(options, primary);
    if (found !== primary) {
      await setLabPrimary(dir, found);
      io.warn?.(`${found} runs read-write: the lab's inventory now has ${found} as its primary`);
      primary = found;
    }
  }
  await prepareDirectory(options, !marker, primary);

  const password = (await readFile(join(dir, REPLICATION_PASSWORD_FILE), 'utf8')).trim();
  const inventoryFile = labInventoryFile(dir);
  const result = await runPlaybook({
    playbookFile: LAB_PLAYBOOK,
    inventoryFile,
    params: { replication_password: password },
    check: false,
    diff: false,
    yes: true,
    stateDir: io.stateDir,
    signal: io.signal,
    warn: io.warn,
    onEvent: io.onEvent,
    env,
  });
  if (result.exitCode === 0) await writePointer(dir, env);
  return { options, inventoryFile, exitCode: result.exitCode, created: !marker };
}

function serverRefs(options: LabOptions): ServerRef[] {
  // Standbys and the drill before the primary, so nothing is left streaming from a stopped server.
  const order = ['drill1', 'db2', 'db1'] as const;
  return order.map((name) => ({
    name,
    pgdata: hostPaths(options.dir, name).pgdata,
    bindir: options.bindir,
    port: 0,
    become: options.become,
  }));
}

export interface LabDownResult {
  dir: string;
  existed: boolean;
  stopped: string[];
}

export async function labDown(dirFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<LabDownResult> {
  const dir = await labDirFor(dirFlag, env);
  const marker = await readMarker(dir);
  if (!marker) {
    const exists = await stat(dir).then(
      () => true,
      () => false,
    );
    if (exists && !(await isEmptyOrMissing(dir))) {
      throw new PgplayError({
        code: 'GUARD',
        message: `${dir} is not a pgplay lab (no marker); refusing to remove it`,
        hint: 'pass the --dir of a lab built by pgplay lab up',
      });
    }
    await removePointer(dir, env);
    return { dir, existed: false, stopped: [] };
  }
  const stopped: string[] = [];
  // Barman's receive-wal streams from the primary: it goes first, by the pid in its lock file.
  if ((await stopLabBarman(dir)).length) stopped.push('barman receive-wal');
  for (const server of serverRefs(markerOptions(marker))) {
    if ((await stopServer(server)) === 'stopped') stopped.push(server.name);
  }
  await rm(dir, { recursive: true, force: true });
  await removePointer(dir, env);
  return { dir, existed: true, stopped };
}

export interface LabHostStatus {
  name: string;
  role: string;
  address: string;
  port?: number;
  pgdata?: string;
  state: string;
  running: boolean;
  pid?: number;
  in_recovery?: boolean;
  timeline?: number;
}

export interface LabStatus {
  dir: string;
  up: boolean;
  inventory?: string;
  pointer: boolean;
  options?: LabOptions;
  hosts: LabHostStatus[];
}

function describeState(host: Host, facts: HostFacts, options: LabOptions): string {
  if (host.role === 'repository') {
    const repo = repositoryPath(options.dir);
    if (options.backupTool === 'barman') return `Barman (barman -c ${barmanPaths(options.dir).config})`;
    return options.backupTool === 'pgbackrest' ? `pgBackRest repository ${repo}` : `pg_basebackup target ${repo}`;
  }
  if (!facts.pgdata_present) return host.role === 'primary' ? 'not built' : 'empty (no PGDATA yet)';
  if (!facts.running) return 'stopped';
  const role = facts.in_recovery === undefined ? '' : facts.in_recovery ? ', in recovery' : ', read-write';
  return `running (pid ${facts.pid ?? '?'}${role}${facts.timeline ? `, timeline ${facts.timeline}` : ''})`;
}

export async function labStatus(dirFlag: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<LabStatus> {
  const dir = await labDirFor(dirFlag, env);
  const marker = await readMarker(dir);
  const inventory = labInventoryFile(dir);
  const pointer = (await readPointer(env)) === inventory;
  if (!marker) return { dir, up: false, pointer, hosts: [] };
  const options = markerOptions(marker);
  const { inventory: inv } = await loadInventory(inventory);
  const hosts = resolveHosts(inv);
  const out: LabHostStatus[] = [];
  for (const name of LAB_HOSTS) {
    const host = hosts[name];
    if (!host) continue;
    let facts: HostFacts = { reachable: true, pgdata_present: false, running: false };
    if (host.pgdata) {
      const transport = createTransport(host, { hosts, resolveSecret: async () => undefined });
      try {
        facts = await gatherFacts(host, transport);
      } finally {
        await transport.close();
      }
    }
    out.push({
      name,
      role: host.role,
      address: host.address,
      ...(host.pgdata ? { port: host.postgres.port, pgdata: host.pgdata } : {}),
      state: describeState(host, facts, options),
      running: facts.running,
      ...(facts.pid !== undefined ? { pid: facts.pid } : {}),
      ...(facts.in_recovery !== undefined ? { in_recovery: facts.in_recovery } : {}),
      ...(facts.timeline !== undefined ? { timeline: facts.timeline } : {}),
    });
  }
  return { dir, up: true, inventory, pointer, options, hosts: out };
}
