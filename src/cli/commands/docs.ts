/**
 * `pgplay docs <playbook> [-i inventory] [-p key=value ...] [-o FILE]`: the playbook as a Markdown
 * runbook (src/docs/runbook.ts), on stdout or written to FILE. A bare name is a shipped playbook, as
 * for run.
 */
import { writeFile } from 'node:fs/promises';
import { buildRunbook } from '../../docs/runbook.js';
import { parse, parseParamPairs, usage } from '../args.js';
import { choosePlaybook } from '../shipped.js';
import { assertWritableOutput } from '../writable.js';

const OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  param: { type: 'string', short: 'p', multiple: true },
  out: { type: 'string', short: 'o' },
} as const;

export async function docsCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('docs', argv, OPTIONS);
  if (positionals.length !== 1) throw usage('docs expects exactly one playbook', 'docs');
  if (values.out !== undefined) await assertWritableOutput(values.out, '--out');
  const chosen = choosePlaybook(positionals[0]!);
  const markdown = await buildRunbook({ playbookFile: chosen.file, inventoryFile: values.inventory, params: parseParamPairs(values.param, 'docs') });
  if (values.out !== undefined) await writeFile(values.out, markdown);
  else write(markdown);
  return 0;
}
