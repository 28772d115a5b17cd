import { test } from 'vitest';
import { parseYaml } from '../../src/load/yaml.js';
import { validateDocument } from '../../src/schema/validate.js';
import { buildInventorySchema } from '../../src/schema/inventory.js';
import { buildPlaybookSchema } from '../../src/schema/playbook.js';
import { PgplayErrors } from '../../src/core/errors.js';

const inv = buildInventorySchema();
const pb = buildPlaybookSchema([
  { name: 'command', summary: 'Run a command', schema: { type: 'object', properties: { argv: { type: 'array', items: { type: 'string' } }, shell: { type: 'string' }, creates: {type:'string'} }, additionalProperties: false } },
  { name: 'pgbackrest', summary: 'pgBackRest', schema: { type: 'object', properties: { command: { enum: ['backup', 'check'] }, type: { enum: ['full', 'diff', 'incr'] }, 'process-max': {type:'integer', minimum:1} }, required: ['command'], additionalProperties: false } },
]);
function show(text: string, schema: any) {
  try {
    const doc = parseYaml(text, 'f.yml');
    for (const e of validateDocument(doc, schema)) console.log(e.format());
  } catch (e) { if (e instanceof PgplayErrors) console.log(e.message); else throw e; }
  console.log('---');
}
test('scratch', () => {
  show(`cluster: main\npostgres:\n  version: 18\n  port: abc\nreplication:\n  user: r\n  password: hunter2\nhosts:\n  db1: {address: x, role: primry, pgdata: /x}\n  db2:\n    address: y\n    role: standby\n    conection: {}\n`, inv);
  show(`cluster: main\npostgres: {version: 15}\nreplication: {user: r, password: {envv: X}}\nhosts:\n  db1: {address: x, role: primary}\n  bad/name: {address: 1, role: drill}\n`, inv);
  show(`name: x\nsteps:\n  - id: a\n    hosts: primary\n    retires: 3\n    timeout: soon\n    retries: many\n    pgbackrest: {command: backup, type: weekly, process-max: "{{x}}"}\n  - id: b\n    command: {argv: [1]}\n    hosts: [db1, 5]\n    delay: "{{ vars.d }}"\n  - id: c\n    hosts: 7\n    ignore_errors: "yes"\n`, pb);
});
