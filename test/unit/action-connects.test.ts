/**
 * Action.connects says which actions may open a PostgreSQL connection, so that a run whose steps use
 * one loads the client library while its facts are read (engine/preflight-warm.ts), and a run with none
 * never loads it. Pinned against the sources: an action declares it exactly when its module, or a helper
 * module it imports (not another action's module, whose connecting code it may not use), calls
 * connectPostgres. A read over an idle connection the run already holds (idleConnection) opens none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { actionNames, loadActions } from '../../src/actions/registry.js';
import { importGraph } from './support/import-graph.js';

const ROOT = join(import.meta.dirname, '..', '..');
const graph = importGraph(ROOT, 'src');
const registry = readFileSync(join(ROOT, 'src/actions/registry.ts'), 'utf8');
/** Each action's module, by the action's name (the registry's `name: () => import('./file.js')`). */
const moduleOf = new Map([...registry.matchAll(/^ {2}(\w+): \(\) => import\('\.\/([\w-]+)\.js'\)/gm)].map((m) => [m[1]!, `src/actions/${m[2]}.ts`]));
const actionModules = new Set(moduleOf.values());
/** A call of connectPostgres (not its definition in postgres/client.ts). */
const connectsHere = (file: string) => /(?<!function )\bconnectPostgres\(/.test(readFileSync(join(ROOT, file), 'utf8'));

/** Whether the action's module, or a module it reaches through imports that are not types nor other actions' modules, calls connectPostgres. */
function reachesConnect(module: string): boolean {
  const seen = new Set([module]);
  const todo = [module];
  while (todo.length) {
    const file = todo.pop()!;
    if (connectsHere(file)) return true;
    for (const edge of graph.get(file) ?? []) {
      if (edge.typeOnly || seen.has(edge.to) || actionModules.has(edge.to) || edge.to.startsWith('src/engine/')) continue;
      seen.add(edge.to);
      todo.push(edge.to);
    }
  }
  return false;
}

describe('Action.connects', () => {
  it('is declared by exactly the actions whose code may open a connection', async () => {
    expect([...moduleOf.keys()].sort()).toEqual(actionNames().sort());
    const actions = await loadActions(actionNames());
    const declared = actions.filter((a) => a.connects === true).map((a) => a.name).sort();
    const reaching = actionNames().filter((name) => reachesConnect(moduleOf.get(name)!)).sort();
    expect(declared).toEqual(reaching);
    // The pin sees them: the actions whose whole job is SQL are among them, a file or command step is not.
    expect(reaching).toEqual(expect.arrayContaining(['sql', 'wait', 'role', 'postgres']));
    expect(reaching).not.toContain('file');
    expect(reaching).not.toContain('command');
  });
});
