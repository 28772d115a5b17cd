/**
 * `pgplay schedule <playbook> --every hourly|daily|weekly [--at HH:MM] [--day Mon] [-p ...] [-i ...]
 * [--randomized-delay 15m] [--state-dir DIR] [--metrics FILE] [--cron | --install [--unit-dir DIR] |
 * --kubernetes --image IMAGE]`: prints (or installs) a systemd service and timer pair, or prints a
 * crontab line or a Kubernetes CronJob manifest, that runs the playbook. Everything is checked first as for a run (playbook, inventory, params): a schedule that
 * would only fail at 3 a.m. is refused now (exit 2).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { actions } from '../../app/action-catalog.js';
import { parseDuration } from '../../core/duration.js';
import { CLI_ENTRY, SHIPPED_PLAYBOOKS } from '../../core/paths.js';
import { loadInventory } from '../../load/inventory.js';
import { resolveParams } from '../../load/params.js';
import { loadPlaybook } from '../../load/playbook.js';
import { cronLine } from '../../schedule/cron.js';
import { cronJobManifest, INVENTORY_MOUNT } from '../../schedule/kubernetes.js';
import { DAYS, EVERY, parseAt, scheduleName, type Every, type Schedule } from '../../schedule/spec.js';
import { systemdUnits } from '../../schedule/systemd.js';
import { parse, parseParamPairs, usage } from '../args.js';
import { locateInventory } from '../locate.js';
import { choosePlaybook } from '../shipped.js';

const OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  param: { type: 'string', short: 'p', multiple: true },
  every: { type: 'string' },
  at: { type: 'string' },
  day: { type: 'string' },
  'randomized-delay': { type: 'string' },
  'state-dir': { type: 'string' },
  metrics: { type: 'string' },
  cron: { type: 'boolean' },
  install: { type: 'boolean' },
  'unit-dir': { type: 'string' },
  'environment-file': { type: 'string' },
  kubernetes: { type: 'boolean' },
  image: { type: 'string' },
  namespace: { type: 'string' },
  'time-zone': { type: 'string' },
  'state-claim': { type: 'string' },
} as const;

/** Options that only mean something for one engine: given with another, they are a mistake (exit 2). */
const ONLY_WITH: Record<string, 'kubernetes' | 'systemd'> = {
  image: 'kubernetes',
  namespace: 'kubernetes',
  'time-zone': 'kubernetes',
  'state-claim': 'kubernetes',
  'randomized-delay': 'systemd',
  'environment-file': 'systemd',
  'state-dir': 'systemd',
};

export async function scheduleCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('schedule', argv, OPTIONS);
  if (positionals.length !== 1) throw usage('schedule expects exactly one playbook', 'schedule');
  const every = values.every as Every | undefined;
  if (!every || !EVERY.includes(every)) throw usage(`--every must be one of ${EVERY.join(', ')}${values.every ? `, got "${values.every}"` : ''}`, 'schedule');
  const day = (values.day ?? 'Sun') as Schedule['day'];
  if (!DAYS.includes(day)) throw usage(`--day must be one of ${DAYS.join(', ')}, got "${values.day}"`, 'schedule');
  if (values.day !== undefined && every !== 'weekly') throw usage('--day only with --every weekly', 'schedule');
  if ([values.cron, values.install, values.kubernetes].filter(Boolean).length > 1) {
    throw usage('--cron prints a crontab line, --install writes systemd units, --kubernetes prints a CronJob: choose one', 'schedule');
  }
  for (const [option, engine] of Object.entries(ONLY_WITH)) {
    const given = (values as Record<string, unknown>)[option] !== undefined;
    if (given && (engine === 'kubernetes') !== Boolean(values.kubernetes)) {
      throw usage(engine === 'kubernetes' ? `--${option} only with --kubernetes` : `--${option} is not for --kubernetes (a CronJob has ${option === 'state-dir' ? '--state-claim' : 'no such setting'})`, 'schedule');
    }
  }
  if (values.kubernetes && !values.image) throw usage('--kubernetes needs --image: the pgplay image the CronJob runs (built from the Dockerfile)', 'schedule');
  if (values['environment-file'] !== undefined && values.cron) throw usage('--environment-file is for systemd units; a crontab sets variables in its own lines', 'schedule');
  if (values['unit-dir'] !== undefined && !values.install) throw usage('--unit-dir only with --install', 'schedule');
  const { hour, minute } = parseAt(every, values.at);

  // Checked now as a run would check them, so that the schedule cannot carry bad input.
  const chosen = choosePlaybook(positionals[0]!);
  const playbookFile = resolve(chosen.file);
  const inventoryFile = resolve(await locateInventory(playbookFile, values.inventory));
  const { inventory } = await loadInventory(inventoryFile);
  const { playbook } = await loadPlaybook(playbookFile, { actions, inventory });
  const params = parseParamPairs(values.param, 'schedule');
  resolveParams(playbook.params ?? {}, params);
  if (Object.keys(params).some((k) => playbook.params?.[k]?.secret)) {
    throw usage('a secret param cannot be scheduled: it would be written into the unit or crontab in clear', 'schedule');
  }

  const env: Record<string, string> = {};
  if (values['state-dir'] !== undefined) env.PGPLAY_STATE_DIR = resolve(values['state-dir']);
  // After the playbook and inventory: the same for every engine.
  const runOptions = [
    ...Object.entries(params).flatMap(([k, v]) => ['-p', `${k}=${v}`]),
    ...(values.metrics !== undefined ? ['--metrics', resolve(values.metrics)] : []),
  ];
  const run = [process.execPath, CLI_ENTRY, 'run', playbookFile, '-i', inventoryFile, ...runOptions];
  const name = scheduleName(inventory.cluster, playbook.name || basename(playbookFile).replace(/\.ya?ml$/, ''));
  const schedule: Schedule = {
    name,
    description: `pgplay ${playbook.name} on cluster ${inventory.cluster}`,
    argv: run,
    every,
    hour,
    minute,
    day,
    randomizedDelaySeconds: Math.round(parseDuration(values['randomized-delay'] ?? '10m', '--randomized-delay') / 1000),
    env,
    ...(values['environment-file'] !== undefined ? { environmentFile: resolve(values['environment-file']) } : {}),
  };
  if (values.cron) {
    write(cronLine(schedule));
    return 0;
  }
  if (values.kubernetes) {
    // The image ships the playbooks: a shipped one by name, any other from the ConfigMap beside the inventory.
    const shipped = playbookFile.startsWith(`${SHIPPED_PLAYBOOKS}/`) && !playbookFile.slice(SHIPPED_PLAYBOOKS.length + 1).includes('/');
    const ownPlaybook = basename(playbookFile);
    const { text } = cronJobManifest(schedule, {
      image: values.image!,
      playbookArg: shipped ? ownPlaybook.replace(/\.ya?ml$/, '') : join(INVENTORY_MOUNT, ownPlaybook),
      configFiles: { 'inventory.yml': inventoryFile, ...(shipped ? {} : { [ownPlaybook]: playbookFile }) },
      extraArgs: runOptions,
      ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
      timeZone: values['time-zone'] ?? 'Etc/UTC',
      ...(values['state-claim'] !== undefined ? { stateClaim: values['state-claim'] } : {}),
      inventory,
    });
    write(text);
    return 0;
  }
  const units = systemdUnits(schedule);
  if (!values.install) {
    write(`# ${units.service.name}\n${units.service.text}\n# ${units.timer.name}\n${units.timer.text}`);
    return 0;
  }
  const dir = resolve(values['unit-dir'] ?? '/etc/systemd/system');
  await mkdir(dir, { recursive: true });
  for (const unit of [units.service, units.timer]) await writeFile(join(dir, unit.name), unit.text, { mode: 0o644 });
  write(`wrote ${join(dir, units.service.name)} and ${join(dir, units.timer.name)}\nenable it with: systemctl daemon-reload && systemctl enable --now ${units.timer.name}\n`);
  return 0;
}
