import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { validateFiles } from '../../src/load/validate-files.js';
import { fakeActions } from '../fixtures/fake-actions.js';
import { fileTempDir } from '../support/temp-dirs.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
const INVENTORY = join(FIXTURES, 'valid', 'inventory.yml');
const PLAYBOOK = join(FIXTURES, 'valid', 'nightly-backup.yml');

function tempFile(name: string, text: string): string {
  const dir = fileTempDir('validate');
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('validateFiles', () => {
  test('the DESIGN.md examples pass and are recognised by kind', async () => {
    const result = await validateFiles([PLAYBOOK, INVENTORY], { actions: fakeActions });
    expect(result.errors).toEqual([]);
    expect(result.checked).toEqual([
      { file: PLAYBOOK, kind: 'playbook' },
      { file: INVENTORY, kind: 'inventory' },
    ]);
  });

  test('a playbook given with one inventory has its hosts checked against it', async () => {
    const playbook = tempFile('p.yml', 'name: p\nsteps:\n  - id: a\n    hosts: db7\n    postgres: { state: started }\n');
    const alone = await validateFiles([playbook], { actions: fakeActions });
    expect(alone.errors).toEqual([]);
    const together = await validateFiles([playbook, INVENTORY], { actions: fakeActions });
    expect(together.errors.map((e) => e.format().split('\n')[0])).toEqual([
      `${playbook}:4:12: unknown host or role "db7" in hosts; did you mean "db1"? (expected a host name (db1, db2, bk1, drill1), a role (primary, standby, repository, drill) or all)`,
    ]);
    expect(together.checked).toEqual([{ file: INVENTORY, kind: 'inventory' }]);
  });

  test('every file is checked and every error returned, file by file', async () => {
    const unknown = tempFile('what.yml', 'answer: 42\n');
    const broken = tempFile('broken.yml', 'name: x\nsteps: [\n');
    const result = await validateFiles(
      [unknown, join(FIXTURES, 'invalid', 'inventory-topology.yml'), broken, '/nonexistent/x.yml', PLAYBOOK],
      { actions: fakeActions },
    );
    const lines = result.errors.map((e) => `${e.code} ${e.format().split('\n')[0]}`);
    expect(lines[0]).toBe(
      `SCHEMA ${unknown}:1:1: cannot tell whether this is a playbook or an inventory (expected a playbook (with steps:) or an inventory (with cluster: and hosts:))`,
    );
    expect(lines.filter((l) => l.includes('inventory-topology.yml'))).toHaveLength(7);
    expect(lines.filter((l) => l.includes(broken))).toEqual([
      `YAML ${broken}:3:1: flow sequence in block collection must be sufficiently indented and end with a ]`,
    ]);
    expect(lines[lines.length - 1]).toBe('USAGE cannot read /nonexistent/x.yml: no such file');
    expect(result.checked).toEqual([{ file: PLAYBOOK, kind: 'playbook' }]);
  });
});
