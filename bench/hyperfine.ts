/** Runs hyperfine over named commands and returns its JSON export, keyed by command name. */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface TimedCommand {
  name: string;
  command: string;
  /** Run before every timed run (and warmup) of this command, untimed: e.g. wipe the state. */
  prepare?: string;
}

export interface TimingResult {
  name: string;
  command: string;
  /** Seconds. */
  mean: number;
  /** null when there was a single run. */
  stddev: number | null;
  median: number;
  min: number;
  max: number;
  user: number;
  system: number;
  times: number[];
}

export interface HyperfineOptions {
  warmup: number;
  runs: number;
  exportJson: string;
  env: NodeJS.ProcessEnv;
}

export async function hyperfine(commands: TimedCommand[], options: HyperfineOptions): Promise<Record<string, TimingResult>> {
  const withPrepare = commands.filter((c) => c.prepare !== undefined);
  if (withPrepare.length > 0 && withPrepare.length !== commands.length) {
    // hyperfine takes either one --prepare for all commands or exactly one per command.
    throw new Error('give every command a prepare step, or none');
  }
  const args = ['--warmup', String(options.warmup), '--runs', String(options.runs), '--export-json', options.exportJson, '--style', 'basic'];
  for (const c of commands) if (c.prepare !== undefined) args.push('--prepare', c.prepare);
  for (const c of commands) args.push('--command-name', c.name);
  for (const c of commands) args.push(c.command);
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('hyperfine', args, { stdio: ['ignore', 'inherit', 'inherit'], env: options.env });
    child.once('error', reject);
    child.once('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`hyperfine exited with ${code} (a benchmarked command failed?)`);
  const exported = JSON.parse(await readFile(options.exportJson, 'utf8')) as { results: Array<Omit<TimingResult, 'name'>> };
  const out: Record<string, TimingResult> = {};
  exported.results.forEach((r, i) => {
    const name = commands[i]!.name;
    out[name] = {
      name,
      command: commands[i]!.command,
      mean: r.mean,
      stddev: r.stddev,
      median: r.median,
      min: r.min,
      max: r.max,
      user: r.user,
      system: r.system,
      times: r.times,
    };
  });
  return out;
}
