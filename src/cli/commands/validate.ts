import { validateShippedFiles } from '../../app/documents.js';
import { PgplayErrors } from '../../core/errors.js';
import { parse, usage } from '../args.js';

/** Checks every file given and reports every error found; exit 2 on any, 0 when all are valid. */
export async function validateCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('validate', argv, { inventory: { type: 'string', short: 'i' } });
  const files = [...positionals];
  if (files.length === 0 && !values.inventory) throw usage('validate expects at least one file', 'validate');
  if (values.inventory && !files.includes(values.inventory)) files.unshift(values.inventory);
  const result = await validateShippedFiles(files);
  if (result.errors.length > 0) throw new PgplayErrors(result.errors);
  for (const c of result.checked) write(`ok  ${c.file} (${c.kind})\n`);
  return 0;
}
