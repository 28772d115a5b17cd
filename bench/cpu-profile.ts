/**
 * Summarises a V8 CPU profile (`node --cpu-prof`) by where the code lives: each npm package,
 * each directory of pgplay's dist/, node's own internals, the garbage collector, and idle time
 * (the process waiting on the network or a child). Self time only, so nothing is counted twice.
 */
import { readFile } from 'node:fs/promises';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string } }>;
  samples: number[];
  timeDeltas: number[];
}

export interface CpuShare {
  where: string;
  ms: number;
}

export function groupOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(idle)') return 'idle (waiting on I/O: SSH, children)';
    if (functionName === '(garbage collector)') return 'garbage collector';
    if (functionName === '(program)') return 'V8/native (parsing, compiling, native code)';
    return `native ${functionName}`;
  }
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/([^/]+)\//.exec(url);
  if (own) return `pgplay ${own[1]}/`;
  if (url.startsWith('node:')) return 'node internals (module loader, streams, fs, ...)';
  return url;
}

export async function summariseCpuProfile(file: string): Promise<{ totalMs: number; shares: CpuShare[] }> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const groupOfNode = new Map(profile.nodes.map((n) => [n.id, groupOf(n.callFrame.url, n.callFrame.functionName)]));
  const ms = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    total += delta;
    const g = groupOfNode.get(id) ?? 'unknown';
    ms.set(g, (ms.get(g) ?? 0) + delta);
  });
  const shares = [...ms.entries()].map(([where, t]) => ({ where, ms: t })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total, shares };
}
