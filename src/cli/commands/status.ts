/**
 * `pgplay status [-i inventory.yml] [--output human|json] [--metrics FILE] [--state-dir DIR]`: the
 * cluster's DR posture, read-only, with Nagios exit codes (0 ok, 1 warning, 2 critical). Bad input
 * is exit 2 as everywhere (critical to a monitoring system: a check that cannot run must page too).
 */
import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { defaultStateDir } from '../../core/paths.js';
import { processRedactor } from '../../core/redact.js';
import { statusMetrics } from '../../metrics/status-metrics.js';
import { writeTextfile } from '../../metrics/textfile.js';
import { errorEvent } from '../../report/json.js';
import { openStatusContext } from '../../status/context.js';
import { runStatusChecks } from '../../status/index.js';
import { formatStatusHuman, formatStatusJson } from '../../status/render.js';
import { parse, usage } from '../args.js';
import { labInventory } from '../locate.js';
import { assertWritableOutput } from '../writable.js';
import { PgplayError } from '../../core/errors.js';

const OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  output: { type: 'string' },
  metrics: { type: 'string' },
  'state-dir': { type: 'string' },
} as const;

export async function statusCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const redactor = processRedactor();
  const json = argv.some((a, i) => a === '--output=json' || (a === '--output' && argv[i + 1] === 'json'));
  try {
    const { values, positionals } = parse('status', argv, OPTIONS);
    if (positionals.length) throw usage(`status takes no arguments, got "${positionals[0]}"`, 'status');
    if (values.output !== undefined && values.output !== 'human' && values.output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, 'status');
    if (values.metrics !== undefined) await assertWritableOutput(values.metrics, '--metrics');
    const inventoryFile = await statusInventory(values.inventory);
    const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
    const ctx = await openStatusContext({ inventoryFile, stateDir, redactor });
    let report;
    try {
      report = redactor.redactValue(await runStatusChecks(ctx, inventoryFile));
    } finally {
      await ctx.close();
    }
    if (values.metrics !== undefined) await writeTextfile(resolve(values.metrics), statusMetrics(report).format());
    write(json ? formatStatusJson(report) : redactor.redact(formatStatusHuman(report)));
    return report.exitCode;
  } catch (e) {
    if (!json) throw e;
    const event = redactor.redactValue(errorEvent(e));
    write(JSON.stringify(event) + '\n');
    return event.exitCode;
  }
}

/** -i, else PGPLAY_INVENTORY, else inventory.yml here, else the lab's inventory when a lab is up. */
async function statusInventory(flag: string | undefined): Promise<string> {
  if (flag) return resolve(flag);
  if (process.env.PGPLAY_INVENTORY) return resolve(process.env.PGPLAY_INVENTORY);
  const here = resolve('inventory.yml');
  if (await access(here).then(() => true, () => false)) return here;
  const lab = await labInventory();
  if (lab) return lab;
  throw new PgplayError({
    code: 'USAGE',
    message: 'no inventory: none given with -i, in PGPLAY_INVENTORY, in the current directory, or from a lab',
    hint: 'pass -i inventory.yml, or start the embedded lab with `pgplay lab up`',
  });
}
