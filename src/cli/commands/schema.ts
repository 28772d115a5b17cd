import { shippedSchema } from '../../app/documents.js';
import { usage } from '../args.js';

export async function schemaCommand(argv: string[], write: (text: string) => void): Promise<number> {
  const kind = argv[0] ?? 'playbook';
  if (argv.length > 1 || (kind !== 'playbook' && kind !== 'inventory')) throw usage('schema expects playbook or inventory', 'schema');
  write(await shippedSchema(kind));
  return 0;
}
