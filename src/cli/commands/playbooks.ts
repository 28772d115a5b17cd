import { describeShippedPlaybooks, type ShippedPlaybook } from '../shipped.js';
import { parse, usage } from '../args.js';
import { EXIT } from '../../core/errors.js';

const OPTIONS = { output: { type: 'string' } } as const;

/** `pgplay playbooks [--output human|json]`: the shipped playbooks, what they do and their params. */
export async function playbooksCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const { values, positionals } = parse('playbooks', argv, OPTIONS);
  if (positionals.length) throw usage(`playbooks takes no arguments, got "${positionals[0]}"`, 'playbooks');
  const output = values.output ?? 'human';
  if (output !== 'human' && output !== 'json') throw usage(`--output must be human or json, got "${output}"`, 'playbooks');
  const playbooks = describeShippedPlaybooks();
  write(output === 'json' ? JSON.stringify({ playbooks }, null, 2) + '\n' : playbooks.map(describe).join('\n'));
  return EXIT.OK;
}

function describe(p: ShippedPlaybook): string {
  const lines = [`${p.name}  (pgplay run ${p.name}.yml; ${p.file})`];
  if (p.description) lines.push(`  ${p.description.replace(/\s+/g, ' ')}`);
  const names = Object.keys(p.params);
  if (names.length === 0) lines.push('  params: none');
  else {
    lines.push('  params:');
    const width = Math.max(...names.map((n) => n.length));
    for (const [name, def] of Object.entries(p.params)) {
      const facts = [
        def.enum ? `${def.type}, one of ${def.enum.join('|')}` : def.type,
        def.required ? 'required' : def.default !== undefined ? `default ${JSON.stringify(def.default)}` : 'optional',
        ...(def.secret ? ['secret'] : []),
      ];
      lines.push(`    ${name.padEnd(width)}  ${facts.join(', ')}${def.description ? `: ${def.description.replace(/\s+/g, ' ')}` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}
