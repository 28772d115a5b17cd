/**
 * Peak memory of a command and everything it starts. Ansible forks a worker per host (up to
 * --forks) plus one ssh client per connection, so the largest single process (what
 * `/usr/bin/time -v` reports as "Maximum resident set size") understates it; pgplay is one process.
 * So the tree is sampled from /proc every few milliseconds and summed two ways:
 *   - RSS: resident pages of each process, shared pages counted once per process (an upper bound:
 *     forked workers share much of their parent's memory copy-on-write);
 *   - PSS: each shared page divided among the processes sharing it (what the tree really costs).
 * `extra` adds processes outside the tree: OpenSSH's ControlPersist masters detach from the ssh
 * that started them, yet they hold Ansible's connections as pgplay's process holds its own.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

export interface MemoryPeak {
  exitCode: number;
  wallMs: number;
  /** Peak over samples of the summed RSS of the tree (+ extra processes), in KiB. */
  peakTreeRssKb: number;
  /** Peak over samples of the summed PSS of the tree (+ extra processes), in KiB. */
  peakTreePssKb: number;
  /** Most processes seen at once (tree + extra), excluding the /usr/bin/time wrapper. */
  peakProcesses: number;
  /** GNU time's "Maximum resident set size": the largest single process of the tree, in KiB. */
  maxSingleRssKb: number;
  samples: number;
}

export interface MemoryOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  intervalMs?: number;
  /** Processes outside the tree to count as well, by their command line. */
  extra?: (cmdline: string) => boolean;
  /** Where GNU time writes its report. */
  timeReport: string;
}

export async function measurePeakMemory(argv: string[], options: MemoryOptions): Promise<MemoryPeak> {
  const started = performance.now();
  const child = spawn('/usr/bin/time', ['-v', '-o', options.timeReport, ...argv], {
    stdio: 'ignore',
    env: options.env,
    cwd: options.cwd,
  });
  const root = child.pid!;
  let peakRss = 0;
  let peakPss = 0;
  let peakProcesses = 0;
  let samples = 0;
  const sample = (): void => {
    const pids = new Set(descendantsOf(root, options.extra));
    let rss = 0;
    let pss = 0;
    for (const pid of pids) {
      const m = memoryOf(pid);
      rss += m.rss;
      pss += m.pss;
    }
    samples++;
    peakRss = Math.max(peakRss, rss);
    peakPss = Math.max(peakPss, pss);
    peakProcesses = Math.max(peakProcesses, pids.size);
  };
  const timer = setInterval(sample, options.intervalMs ?? 20);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 255)));
  });
  clearInterval(timer);
  const wallMs = performance.now() - started;
  const report = await readFile(options.timeReport, 'utf8');
  await rm(options.timeReport, { force: true });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(report);
  if (!m) throw new Error(`no "Maximum resident set size" in GNU time's report:\n${report}`);
  return { exitCode, wallMs, peakTreeRssKb: peakRss, peakTreePssKb: peakPss, peakProcesses, maxSingleRssKb: Number(m[1]), samples };
}

interface ProcEntry {
  pid: number;
  ppid: number;
}

function processTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(join('/proc', name, 'stat'), 'latin1');
      // The command name sits in parentheses and may contain spaces; the fields after it are fixed.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.push({ pid: Number(name), ppid: Number(fields[1]) });
    } catch {
      // The process exited between readdir and read.
    }
  }
  return out;
}

/** The processes under `root` (not root itself: that is the /usr/bin/time wrapper), plus matching extras. */
function descendantsOf(root: number, extra?: (cmdline: string) => boolean): number[] {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const p of table) (children.get(p.ppid) ?? children.set(p.ppid, []).get(p.ppid)!).push(p.pid);
  const out: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  if (extra) {
    for (const p of table) {
      if (p.pid === root || out.includes(p.pid)) continue;
      try {
        const cmdline = readFileSync(join('/proc', String(p.pid), 'cmdline'), 'latin1').replaceAll('\0', ' ');
        if (extra(cmdline)) out.push(p.pid);
      } catch {
        // Gone already.
      }
    }
  }
  return out;
}

function memoryOf(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(join('/proc', String(pid), 'smaps_rollup'), 'latin1');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('Rss'), pss: kb('Pss') };
  } catch {
    return { rss: 0, pss: 0 };
  }
}
