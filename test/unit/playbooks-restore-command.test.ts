/**
 * Every restore_command the shipped playbooks write is the host's resolved one (host.restoreCommand,
 * src/load/restore-command.ts): an engine's WAL fetch command spelled out again in one playbook drifts
 * from the others (barman/restore.yml once lacked the get-wal form backup.barman.local needs, and the
 * standbys a switchover repointed had none at all).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';

const PLAYBOOKS = join(import.meta.dirname, '..', '..', 'playbooks');

async function playbookFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await playbookFiles(path)));
    else if (entry.name.endsWith('.yml')) out.push(path);
  }
  return out;
}

/** Every value of a restore_command key anywhere in the document, with where it is. */
function restoreCommands(node: unknown, at: string, out: Array<{ at: string; value: unknown }>): void {
  if (Array.isArray(node)) node.forEach((item, i) => restoreCommands(item, `${at}[${(item as { id?: string })?.id ?? i}]`, out));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'restore_command') out.push({ at: `${at}.${key}`, value });
      else restoreCommands(value, `${at}.${key}`, out);
    }
  }
}

describe('restore_command in the shipped playbooks', () => {
  test('is host.restoreCommand wherever one is written', async () => {
    const found: Array<{ at: string; value: unknown }> = [];
    for (const file of await playbookFiles(PLAYBOOKS)) {
      restoreCommands(parse(await readFile(file, 'utf8')), relative(PLAYBOOKS, file), found);
    }
    // standby-build, repoint, recovery-settings (3 targets), pitr-drill (3 targets) at least.
    expect(found.length).toBeGreaterThanOrEqual(8);
    expect(found.filter((f) => f.value !== '{{host.restoreCommand}}')).toEqual([]);
  });
});
