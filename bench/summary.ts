/** The Markdown tables bench/README.md shows, computed from one run's results. */
import type { Results } from './run.js';
import type { TimingResult } from './hyperfine.js';
import type { MemoryPeak } from './memory.js';

/** Issue 14's goals (issue 3's was 20 × for the no-change run): 3 hosts × 20 steps, Ansible's time / pgplay's. */
export const GOALS = { noChange: 30, first: 15 } as const;

/** hyperfine reports no standard deviation (null) for a single run. */
const sd = (t: TimingResult): number => t.stddev ?? 0;

const seconds = (t: TimingResult): string => `${t.mean.toFixed(3)} s ± ${sd(t).toFixed(3)}`;

/** Ansible's mean over pgplay's, with the spread both standard deviations give it. */
export function ratio(pgplay: TimingResult, ansible: TimingResult): { value: number; sd: number } {
  const value = ansible.mean / pgplay.mean;
  return { value, sd: value * Math.sqrt((sd(pgplay) / pgplay.mean) ** 2 + (sd(ansible) / ansible.mean) ** 2) };
}

const mib = (kb: number): string => `${(kb / 1024).toFixed(0)} MiB`;

function peak(runs: MemoryPeak[], key: keyof MemoryPeak): number {
  return Math.max(...runs.map((r) => r[key] as number));
}

export function summary(r: Results): string {
  const rows: Array<[string, Record<string, TimingResult>]> = [
    ['3 hosts × 20 steps, first run', r.timing.smallFirst],
    ['3 hosts × 20 steps, no-change run', r.timing.smallNoChange],
    ['30 hosts × 10 steps, first run', r.timing.fanoutFirst],
    ['30 hosts × 10 steps, no-change run', r.timing.fanoutNoChange],
  ];
  const lines = [
    `Run of ${r.date} on ${r.machine.cores} × ${r.machine.cpu}, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}; ` +
      `node ${r.machine.node}, ${r.machine.ansible}, ${r.machine.openssh}, ${r.machine.hyperfine}; pgplay ${r.machine.pgplayCommit}.`,
    '',
    '| scenario | pgplay (mean ± sd) | Ansible (mean ± sd) | Ansible / pgplay |',
    '|---|---|---|---|',
    ...rows.map(([label, t]) => {
      const q = ratio(t.pgplay!, t.ansible!);
      return `| ${label} | ${seconds(t.pgplay!)} | ${seconds(t.ansible!)} | ${q.value.toFixed(1)} × ± ${q.sd.toFixed(1)} |`;
    }),
    '',
    `Timed runs: ${r.settings.runs} per command on 3 hosts, ${r.settings.fanoutRuns} on 30 (after ${r.settings.warmup} warmup run).`,
    '',
    '| 30 hosts × 10 steps | peak memory, tree PSS | peak memory, tree RSS | largest single process (GNU time) | processes at peak |',
    '|---|---|---|---|---|',
  ];
  for (const tool of ['pgplay', 'ansible']) {
    for (const phase of ['first', 'noChange'] as const) {
      const runs = r.memory[tool]![phase];
      lines.push(
        `| ${tool === 'ansible' ? 'Ansible' : 'pgplay'}, ${phase === 'first' ? 'first run' : 'no-change run'} | ${mib(peak(runs, 'peakTreePssKb'))} | ` +
          `${mib(peak(runs, 'peakTreeRssKb'))} | ${mib(peak(runs, 'maxSingleRssKb'))} | ${peak(runs, 'peakProcesses')} |`,
      );
    }
  }
  const noChange = ratio(r.timing.smallNoChange.pgplay!, r.timing.smallNoChange.ansible!);
  const first = ratio(r.timing.smallFirst.pgplay!, r.timing.smallFirst.ansible!);
  const verdict = (value: number, goal: number) => `${value.toFixed(1)} × against ${goal} × — ${value >= goal ? 'met' : 'not met'}`;
  lines.push(
    '',
    `Goals (3 hosts × 20 steps, Ansible's time over pgplay's): no-change run ${verdict(noChange.value, GOALS.noChange)}; ` +
      `first run ${verdict(first.value, GOALS.first)}.`,
    '',
  );
  for (const b of Object.values(r.breakdown)) lines.push(...b.table, '');
  const load = r.loads.map((l) => l.load1);
  lines.push(
    `1-minute load average while it ran (${r.machine.cores} cores): ${Math.min(...load).toFixed(1)} to ${Math.max(...load).toFixed(1)} ` +
      `(sampled as each phase started).`,
    '',
  );
  return lines.join('\n');
}
