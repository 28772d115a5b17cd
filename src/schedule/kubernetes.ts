/**
 * A Kubernetes CronJob for a schedule: one CronJob per cluster and playbook, running the pgplay image
 * (Dockerfile: its entrypoint is the CLI) with `run <playbook> -i <inventory>`. Nothing secret is in
 * the manifest: the inventory comes from a ConfigMap and every secret (the inventory's {env} variables,
 * the SSH key and known_hosts, {file} secrets) from a Secret, both by name. Overlaps are excluded twice:
 * concurrencyPolicy Forbid (Kubernetes starts no Job while the last one runs) and pgplay's cluster lock
 * on the cluster's own hosts (src/lock/host-lock.ts), which also excludes a human's run or another
 * scheduler's. Validated in tests against the Kubernetes API schema (kubernetes-models).
 */
import { posix } from 'node:path';
import { yamlLib } from '../load/yaml-lib.js';
import { locateSecretRefs } from '../engine/secret-checks.js';
import type { Inventory } from '../model/inventory.js';
import { cronFields } from './cron.js';
import type { Schedule } from './spec.js';

/** Where the container finds what the CronJob mounts. */
export const INVENTORY_MOUNT = '/etc/pgplay/inventory';
export const STATE_MOUNT = '/var/lib/pgplay';
/** The image's user is root (Dockerfile): `~` in the inventory's paths is this. */
const CONTAINER_HOME = '/root';

export interface KubernetesOptions {
  image: string;
  /** The playbook as the container names it: a shipped name, or a file in the ConfigMap. */
  playbookArg: string;
  /** The ConfigMap's files: key (inventory.yml, a playbook that is not shipped) → the file here. */
  configFiles: Record<string, string>;
  /** The pgplay arguments after the playbook: -p ..., --metrics ... */
  extraArgs: string[];
  namespace?: string;
  timeZone: string;
  /** A PersistentVolumeClaim for the run journal (history, resume, drill records); else an emptyDir. */
  stateClaim?: string;
  inventory: Inventory;
}

/** An object name Kubernetes accepts (RFC 1123: lower case, digits, '-', '.'; a CronJob's at most 52 long). */
export function kubernetesName(name: string, max = 52): string {
  return name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').slice(0, max).replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '') || 'pgplay';
}

/** A Secret key for a file: what Kubernetes accepts ([-._a-zA-Z0-9]+), unique among the keys. */
function secretKey(path: string, taken: Set<string>): string {
  const base = posix.basename(path).replace(/[^-._a-zA-Z0-9]/g, '_') || 'file';
  let key = base;
  for (let i = 2; taken.has(key); i++) key = `${base}-${i}`;
  taken.add(key);
  return key;
}

/** `--from-file=KEY=PATH` for the kubectl commands in the header: quoted, `~` as "$HOME" (no tilde expansion there). */
function fromFile(key: string, path: string): string {
  const home = path === '~' || path.startsWith('~/');
  const rest = home ? path.slice(1) : path;
  const quoted = /^[A-Za-z0-9_@+=:,./-]*$/.test(rest) ? rest : `'${rest.replace(/'/g, `'\\''`)}'`;
  return `--from-file=${key}=${home ? '"$HOME"' : ''}${quoted}`;
}

function inContainer(path: string): string {
  return path === '~' ? CONTAINER_HOME : path.startsWith('~/') ? posix.join(CONTAINER_HOME, path.slice(2)) : path;
}

/** The environment variables and files the inventory's secrets and SSH connections read. */
export function secretInputs(inventory: Inventory): { env: string[]; files: string[] } {
  const env = new Set<string>();
  const files = new Set<string>();
  for (const { ref } of locateSecretRefs(inventory)) {
    if ('env' in ref) env.add(ref.env);
    else files.add(ref.file);
  }
  for (const entry of Object.values(inventory.hosts)) {
    const conn = { ...inventory.connection, ...entry.connection };
    if ((conn.transport ?? 'ssh') !== 'ssh') continue;
    if (conn.identityFile) files.add(conn.identityFile);
    else if (!conn.agent) files.add('~/.ssh/id_ed25519');
    files.add(conn.knownHosts && conn.knownHosts !== 'accept-new' ? conn.knownHosts : '~/.ssh/known_hosts');
  }
  return { env: [...env].sort(), files: [...files].sort() };
}

export function cronJobManifest(s: Schedule, o: KubernetesOptions): { manifest: Record<string, unknown>; text: string } {
  const name = kubernetesName(s.name);
  const configMap = `${name}-inventory`;
  const secret = `${name}-secrets`;
  const labels = { 'app.kubernetes.io/name': 'pgplay', 'app.kubernetes.io/instance': name, 'pgplay.io/cluster': kubernetesName(o.inventory.cluster, 63) };
  const { env: secretEnv, files } = secretInputs(o.inventory);
  const taken = new Set<string>(secretEnv);
  const fileKeys = files.map((path) => ({ path, key: secretKey(path, taken) }));

  const env = [
    // No terminal: a step that needs confirmation refuses (exit 3) instead of waiting for an answer.
    { name: 'CI', value: 'true' },
    { name: 'PGPLAY_STATE_DIR', value: STATE_MOUNT },
    ...Object.entries(s.env)
      .filter(([k]) => k !== 'PGPLAY_STATE_DIR')
      .map(([name, value]) => ({ name, value })),
    ...secretEnv.map((name) => ({ name, valueFrom: { secretKeyRef: { name: secret, key: name } } })),
  ];
  const volumeMounts = [
    { name: 'inventory', mountPath: INVENTORY_MOUNT, readOnly: true },
    { name: 'state', mountPath: STATE_MOUNT },
    ...fileKeys.map(({ path, key }) => ({ name: 'secrets', mountPath: inContainer(path), subPath: key, readOnly: true })),
  ];
  const volumes = [
    { name: 'inventory', configMap: { name: configMap } },
    o.stateClaim ? { name: 'state', persistentVolumeClaim: { claimName: o.stateClaim } } : { name: 'state', emptyDir: {} },
    ...(fileKeys.length > 0 ? [{ name: 'secrets', secret: { secretName: secret, defaultMode: 0o400 } }] : []),
  ];
  const manifest = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, ...(o.namespace ? { namespace: o.namespace } : {}), labels },
    spec: {
      schedule: cronFields(s),
      timeZone: o.timeZone,
      // Never two Jobs of this CronJob at once; pgplay's cluster lock on the hosts excludes every other run.
      concurrencyPolicy: 'Forbid',
      // A run missed (controller down, a Job still running) still starts within an hour, like systemd's Persistent=true.
      startingDeadlineSeconds: 3600,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels },
        spec: {
          // A failed DR run is not retried blindly: the next schedule, or a human with --resume, goes on.
          backoffLimit: 0,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'pgplay',
                  image: o.image,
                  args: ['run', o.playbookArg, '-i', posix.join(INVENTORY_MOUNT, 'inventory.yml'), ...o.extraArgs],
                  env,
                  volumeMounts,
                },
              ],
              volumes,
            },
          },
        },
      },
    },
  };

  const configFrom = Object.entries(o.configFiles).map(([key, path]) => fromFile(key, path));
  const secretFrom = [
    ...secretEnv.map((name) => `--from-literal=${name}="$${name}"`),
    ...fileKeys.map(({ path, key }) => fromFile(key, path)),
  ];
  const ns = o.namespace ? ` -n ${o.namespace}` : '';
  const header = [
    `# ${s.description}, as a Kubernetes CronJob (one per cluster and playbook).`,
    '# It reads the inventory from a ConfigMap and the secrets from a Secret, by name; create them first',
    '# (the values never enter this manifest):',
    `#   kubectl${ns} create configmap ${configMap} ${configFrom.join(' ')}`,
    ...(secretFrom.length > 0 ? [`#   kubectl${ns} create secret generic ${secret} ${secretFrom.join(' ')}`] : []),
    ...(o.stateClaim ? [] : ['# The run journal is an emptyDir (lost with the pod): give --state-claim PVC to keep history and --resume.']),
    '',
  ].join('\n');
  return { manifest, text: `${header}${yamlLib().stringify(manifest, { lineWidth: 0, aliasDuplicateObjects: false })}` };
}
