/**
 * `pgplay schedule <playbook> --every hourly|daily|weekly [--at HH:MM] [--day Mon] [-p ...] [-i ...]
 * [--randomized-delay 15m] [--state-dir DIR] [--metrics FILE] [--cron | --install [--unit-dir DIR]]`:
 * prints (or installs) a systemd service and timer pair, or prints a crontab line, that runs the
 * playbook. Everything is checked first as for a run (playbook, inventory, params): a schedule that
 * would only fail at 3 a.m. is refused now (exit 2).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { actions } from '../../app/action-catalog.js';
import { parseDuration } from '../../core/duration.js';
import { PACKAGE_ROOT } from '../../core/paths.js';
import { loadInventory } from '../../load/inventory.js';
import { resolveParams } from '../../load/params.js';
import { loadPlaybook } from '../../load/playbook.js';
import { cronLine } from '../../schedule/cron.js';
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
} as const;

export async function scheduleCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('schedule', argv, OPTIONS);
  if (positionals.length !== 1) throw usage('schedule expects exactly one playbook', 'schedule');
  const every = values.every as Every | undefined;
  if (!every || !EVERY.includes(every)) throw usage(`--every must be one of ${EVERY.join(', ')}${values.every ? `, got "${values.every}"` : ''}`, 'schedule');
  const day = (values.day ?? 'Sun') as Schedule['day'];
  if (!DAYS.includes(day)) throw usage(`--day must be one of ${DAYS.join(', ')}, got "${values.day}"`, 'schedule');
  if (values.day !== undefined && every !== 'weekly') throw usage('--day only with --every weekly', 'schedule');
  if (values.cron && values.install) throw usage('--cron prints a crontab line; --install writes systemd units: choose one', 'schedule');
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
  const run = [
    process.execPath,
    join(PACKAGE_ROOT, 'dist', 'cli', 'main.js'),
    'run',
    playbookFile,
    '-i',
    inventoryFile,
    ...Object.entries(params).flatMap(([k, v]) => ['-p', `${k}=${v}`]),
    ...(values.metrics !== undefined ? ['--metrics', resolve(values.metrics)] : []),
  ];
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
