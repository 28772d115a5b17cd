import { resolve } from 'node:path';
import { parseDuration } from '../../core/duration.js';
import { EXIT } from '../../core/errors.js';
import { defaultStateDir } from '../../core/paths.js';
import { exportEvidence } from '../../evidence/export.js';
import { verifyEvidence } from '../../evidence/verify.js';
import { parse, usage } from '../args.js';

const OPTIONS = {
  'state-dir': { type: 'string' },
  output: { type: 'string' },
  since: { type: 'string' },
  key: { type: 'string' },
} as const;

/** `pgplay evidence verify|export`: the tamper-evident record of every run (see src/evidence). */
export async function evidenceCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('evidence', argv, OPTIONS);
  const [sub, ...rest] = positionals;
  const stateDir = values['state-dir'] !== undefined ? resolve(values['state-dir']) : defaultStateDir();
  const output = values.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${values.output}"`, 'evidence');
  if (sub === 'verify') {
    if (rest.length) throw usage(`evidence verify takes no arguments, got "${rest[0]}"`, 'evidence');
    const v = verifyEvidence(stateDir);
    if (output === 'json') write(JSON.stringify(v, null, 2) + '\n');
    else {
      write(v.ok ? `evidence verified: ${v.chain.length} sealed run${v.chain.length === 1 ? '' : 's'} in one unbroken chain (${stateDir})\n` : `EVIDENCE DOES NOT VERIFY (${stateDir}):\n`);
      for (const p of v.problems) write(`  problem: ${p}\n`);
      for (const n of v.notes) write(`  note: ${n}\n`);
    }
    return v.ok ? EXIT.OK : EXIT.FAILED;
  }
  if (sub === 'export') {
    if (rest.length !== 1) throw usage('evidence export takes one directory: pgplay evidence export --since 90d DIR', 'evidence');
    if (values.since === undefined) throw usage('evidence export needs --since (e.g. 90d)', 'evidence');
    const r = await exportEvidence({
      stateDir,
      sinceMs: parseDuration(values.since, '--since'),
      dir: resolve(rest[0]!),
      ...(values.key !== undefined ? { key: resolve(values.key) } : {}),
    });
    if (output === 'json') write(JSON.stringify(r, null, 2) + '\n');
    else write(`exported ${r.runs.length} run${r.runs.length === 1 ? '' : 's'} (${r.files} files) to ${r.dir}; index ${r.index}${r.signature ? `, signature ${r.signature}` : ' (unsigned: --key FILE signs it)'}\n`);
    return EXIT.OK;
  }
  throw usage(sub === undefined ? 'evidence needs verify or export' : `unknown evidence command "${sub}"`, 'evidence');
}
