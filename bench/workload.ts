/**
 * The benchmark's workload, written twice from one description: a pgplay playbook + inventory and
 * the equivalent Ansible playbook + inventory + ansible.cfg. Both describe the same hosts, the same
 * directories with the same modes and the same rendered files byte for byte (verify.ts checks that),
 * so the only difference measured is the tool.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface BenchHost {
  name: string;
  address: string;
  /** The port of the sshd serving this address (one sshd serves at most 16 addresses). */
  port: number;
}

export interface Rig {
  identityFile: string;
  knownHosts: string;
}

/** Where one tool's files go: playbooks, inventories and the per-host target directories. */
export interface ToolLayout {
  dir: string;
  /** Each host converges under <targets>/<host name>/. */
  targets: string;
}

export interface Workload {
  root: string;
  pgplay: ToolLayout;
  ansible: ToolLayout & { config: string; controlPathDir: string };
}

/** The two sizes measured: 20 steps (10 dirs + 10 templates) and 10 steps (5 + 5) for the fan-out. */
export const STEP_SETS = { converge20: 10, converge10: 5 } as const;
export type StepSet = keyof typeof STEP_SETS;

/** How each tool spells the two per-host values a rendered file uses. */
interface Syntax {
  hostName: string;
  address: string;
}

const HANDLEBARS: Syntax = { hostName: '{{host.name}}', address: '{{host.address}}' };
const JINJA: Syntax = { hostName: '{{ inventory_hostname }}', address: '{{ ansible_host }}' };

const pad = (n: number): string => String(n).padStart(2, '0');

/**
 * A config file of realistic size (about 1 KB, like a postgresql.conf include), identical once
 * rendered by either engine: no characters either template language treats specially.
 */
export function configTemplate(n: number, s: Syntax): string {
  const lines = [
    `# service-${pad(n)}.conf: rendered for ${s.hostName} by the pgplay benchmark; do not edit by hand`,
    `[service]`,
    `name = service-${pad(n)}`,
    `host = ${s.hostName}`,
    `listen_address = ${s.address}`,
    `port = ${6400 + n}`,
    `max_connections = ${100 + n}`,
    `shared_buffers = ${128 * n}MB`,
    `work_mem = ${4 * n}MB`,
    `maintenance_work_mem = 64MB`,
    `effective_cache_size = 4GB`,
    `wal_level = replica`,
    `max_wal_senders = 10`,
    `archive_mode = on`,
    `archive_timeout = 60s`,
    `checkpoint_timeout = 15min`,
    `log_line_prefix = '%m [%p] %q%u@%d '`,
    `log_min_duration_statement = 250ms`,
    `hot_standby = on`,
    `hot_standby_feedback = on`,
    ``,
    `[replication]`,
    `application_name = ${s.hostName}-service-${pad(n)}`,
    `primary_slot_name = slot_${pad(n)}`,
    `recovery_target_timeline = latest`,
    ``,
  ];
  return lines.join('\n');
}

export async function writeWorkload(root: string, rig: Rig, hostSets: Record<string, BenchHost[]>): Promise<Workload> {
  const pgplay = { dir: join(root, 'pgplay'), targets: join(root, 'targets', 'pgplay') };
  const ansibleDir = join(root, 'ansible');
  const ansible = {
    dir: ansibleDir,
    targets: join(root, 'targets', 'ansible'),
    config: join(ansibleDir, 'ansible.cfg'),
    // Short: a ControlPath socket name must fit in 108 bytes.
    controlPathDir: join(root, 'cp'),
  };
  for (const d of [pgplay.dir, join(pgplay.dir, 'templates'), ansible.dir, join(ansible.dir, 'templates'), ansible.controlPathDir]) {
    await mkdir(d, { recursive: true, mode: 0o700 });
  }
  const maxTemplates = Math.max(...Object.values(STEP_SETS));
  for (let n = 1; n <= maxTemplates; n++) {
    await writeFile(join(pgplay.dir, 'templates', `service-${pad(n)}.conf.hbs`), configTemplate(n, HANDLEBARS));
    await writeFile(join(ansible.dir, 'templates', `service-${pad(n)}.conf.j2`), configTemplate(n, JINJA));
  }
  for (const [set, count] of Object.entries(STEP_SETS)) {
    await writeFile(join(pgplay.dir, `${set}.yml`), pgplayPlaybook(set, count, pgplay.targets));
    await writeFile(join(ansible.dir, `${set}.yml`), ansiblePlaybook(set, count, ansible.targets));
  }
  for (const [name, hosts] of Object.entries(hostSets)) {
    await writeFile(join(pgplay.dir, `inventory-${name}.yml`), pgplayInventory(hosts, rig, join(root, 'no-pgdata')));
    await writeFile(join(ansible.dir, `inventory-${name}.ini`), ansibleInventory(hosts));
  }
  await writeFile(ansible.config, ansibleConfig(rig, ansible.controlPathDir, root));
  return { root, pgplay, ansible };
}

function pgplayPlaybook(name: string, count: number, targets: string): string {
  const steps: string[] = [];
  for (let n = 1; n <= count; n++) {
    steps.push(
      `  - id: dir-${pad(n)}`,
      `    hosts: all`,
      `    file: { path: "{{vars.targets}}/{{host.name}}/service-${pad(n)}", state: directory, mode: "0755" }`,
    );
  }
  for (let n = 1; n <= count; n++) {
    steps.push(
      `  - id: conf-${pad(n)}`,
      `    hosts: all`,
      `    template: { src: service-${pad(n)}.conf.hbs, dest: "{{vars.targets}}/{{host.name}}/service-${pad(n)}/service.conf", mode: "0644" }`,
    );
  }
  return [`name: bench-${name}`, `vars:`, `  targets: ${JSON.stringify(targets)}`, `steps:`, ...steps, ''].join('\n');
}

function ansiblePlaybook(name: string, count: number, targets: string): string {
  const tasks: string[] = [];
  for (let n = 1; n <= count; n++) {
    tasks.push(
      `    - name: dir-${pad(n)}`,
      `      ansible.builtin.file: { path: "{{ targets }}/{{ inventory_hostname }}/service-${pad(n)}", state: directory, mode: "0755" }`,
    );
  }
  for (let n = 1; n <= count; n++) {
    tasks.push(
      `    - name: conf-${pad(n)}`,
      `      ansible.builtin.template: { src: templates/service-${pad(n)}.conf.j2, dest: "{{ targets }}/{{ inventory_hostname }}/service-${pad(n)}/service.conf", mode: "0644" }`,
    );
  }
  return [
    `- name: bench-${name}`,
    `  hosts: all`,
    // pgplay reads its facts in one round trip per host; Ansible's setup module is far heavier, so
    // leaving it off is the setting most favourable to Ansible (see README).
    `  gather_facts: false`,
    `  vars:`,
    `    targets: ${JSON.stringify(targets)}`,
    `  tasks:`,
    ...tasks,
    '',
  ].join('\n');
}

/**
 * One primary (the inventory needs exactly one; its PGDATA does not exist, so its facts only say so)
 * and repository hosts, which need no PGDATA. No become: both tools write as the root login.
 */
function pgplayInventory(hosts: BenchHost[], rig: Rig, absentPgdata: string): string {
  const lines = [
    `cluster: bench`,
    `postgres: { version: 15, bindir: /usr/lib/postgresql/15/bin }`,
    `connection:`,
    `  transport: ssh`,
    `  user: root`,
    `  identityFile: ${JSON.stringify(rig.identityFile)}`,
    `  knownHosts: ${JSON.stringify(rig.knownHosts)}`,
    `  agent: false`,
    `hosts:`,
    ...hosts.map((h, i) =>
      i === 0
        ? `  ${h.name}: { address: ${h.address}, connection: { port: ${h.port} }, role: primary, pgdata: ${JSON.stringify(join(absentPgdata, h.name))} }`
        : `  ${h.name}: { address: ${h.address}, connection: { port: ${h.port} }, role: repository }`,
    ),
    '',
  ];
  return lines.join('\n');
}

function ansibleInventory(hosts: BenchHost[]): string {
  return [
    '[bench]',
    ...hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.port} ansible_user=root`),
    '',
  ].join('\n');
}

/**
 * Ansible at its fastest common setting: pipelining, one persistent master connection per host,
 * forks 10 (pgplay's default too), no fact gathering, the interpreter named (no discovery round
 * trip), host keys checked against the rig's known_hosts like pgplay's strict checking.
 */
function ansibleConfig(rig: Rig, controlPathDir: string, root: string): string {
  const sshArgs = [
    '-o ControlMaster=auto',
    '-o ControlPersist=60s',
    `-o UserKnownHostsFile=${rig.knownHosts}`,
    '-o StrictHostKeyChecking=yes',
    '-o IdentitiesOnly=yes',
  ].join(' ');
  return [
    '[defaults]',
    'forks = 10',
    'host_key_checking = True',
    'gathering = explicit',
    'interpreter_python = /usr/bin/python3',
    `private_key_file = ${rig.identityFile}`,
    'retry_files_enabled = False',
    'deprecation_warnings = False',
    `local_tmp = ${join(root, 'ansible-local-tmp')}`,
    '',
    '[ssh_connection]',
    'pipelining = True',
    `ssh_args = ${sshArgs}`,
    `control_path_dir = ${controlPathDir}`,
    '',
  ].join('\n');
}
