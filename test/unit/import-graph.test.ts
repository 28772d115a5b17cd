import { join } from 'node:path';
import { expect, test } from 'vitest';
import { findCycles, importGraph, type ImportEdge } from './support/import-graph.js';

const ROOT = join(import.meta.dirname, '..', '..');
const graph = importGraph(ROOT, 'src');

test('the import graph of src/ is read (static imports, re-exports and import() of relative paths)', () => {
  // The reader itself must see what it checks: a graph without edges would pass every rule below.
  expect(graph.get('src/cli/main.ts')?.map((e) => e.to)).toContain('src/cli/commands/run.ts'); // import()
  expect(graph.get('src/engine/run.ts')?.map((e) => e.to)).toContain('src/engine/step.ts');
  expect(graph.size).toBeGreaterThan(100);
});

test('src/ has no import cycle, types-only imports included', () => {
  const cycles = findCycles(graph).map(({ members, cycle }) => `${cycle.join(' -> ')}${members.length > cycle.length - 1 ? ` (one of the cycles among ${members.join(', ')})` : ''}`);
  expect(cycles, `import cycles in src/:\n${cycles.join('\n')}`).toEqual([]);
});

test('the engine knows actions only through the Action interface it owns: nothing in src/engine imports src/actions', () => {
  const imports = [...graph].flatMap(([file, edges]) =>
    file.startsWith('src/engine/') ? edges.filter((e) => e.to.startsWith('src/actions/')).map((e) => `${file} -> ${e.to}`) : [],
  );
  expect(imports).toEqual([]);
});

test('the folders of src/ are layers: no folder imports one that imports it back (the cycles issue 9 names are between folders)', () => {
  const folderOf = (file: string) => file.split('/').slice(0, 2).join('/');
  const folders = new Map<string, ImportEdge[]>();
  for (const [file, edges] of graph) {
    const from = folderOf(file);
    const out = folders.get(from) ?? folders.set(from, []).get(from)!;
    for (const edge of edges) if (folderOf(edge.to) !== from) out.push({ ...edge, to: folderOf(edge.to) });
  }
  const witnesses = (from: string, to: string) =>
    [...graph].flatMap(([file, edges]) => (folderOf(file) === from ? edges.filter((e) => folderOf(e.to) === to).map((e) => `${file} -> ${e.to}`) : []));
  const tangles = findCycles(folders).map(({ members, cycle }) =>
    [`${members.join(', ')}:`, ...cycle.slice(1).map((to, i) => `  ${witnesses(cycle[i]!, to).join('; ')}`)].join('\n'),
  );
  expect(tangles, `folders of src/ that import each other:\n${tangles.join('\n')}`).toEqual([]);
});

test('the action registry is wired in one place: only the composition root (src/app) imports it', () => {
  const importers = [...graph].flatMap(([file, edges]) => (edges.some((e) => e.to === 'src/actions/registry.ts') && !file.startsWith('src/app/') ? [file] : []));
  expect(importers).toEqual([]);
});
