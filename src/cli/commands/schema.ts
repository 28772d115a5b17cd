import { actions } from '../../actions/registry.js';
import { publishedSchema } from '../../schema/publish.js';
import { usage } from '../args.js';

export function schemaCommand(argv: string[], write: (text: string) => void): number {
  const kind = argv[0] ?? 'playbook';
  if (argv.length > 1 || (kind !== 'playbook' && kind !== 'inventory')) throw usage('schema expects playbook or inventory', 'schema');
  write(publishedSchema(kind, actions));
  return 0;
}
