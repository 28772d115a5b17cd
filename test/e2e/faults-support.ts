import type { ResultPromise } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, runCli, spawnCli, type CliResult } from '../support/cli.js';

/** Shared by the fault, resume and safety suites: a local two-host inventory, the CLI, the journal. */
export { CLI };

export interface LocalRig {
  dir: string;
  stateDir: string;
  inventory: string;
  /** Writes a playbook into the rig's directory and returns its path. */
  playbook(name: string, lines: string[]): Promise<string>;
  pgplay(args: string[], options?: { env?: Record<string, string> }): Promise<CliResult>;
  /** The CLI still running, to signal; `finished(await child)` (support/cli.ts) gives its outcome. */
  spawn(args: string[]): ReturnType<typeof spawnCli>;
}

export async function localRig(cluster: string, hostNames = ['h1', 'h2']): Promise<LocalRig> {
  const dir = await mkdtemp(join(tmpdir(), `pgplay-${cluster}-`));
  const stateDir = join(dir, 'state');
  const inventory = join(dir, 'inventory.yml');
  await mkdir(join(dir, 'out'));
  await writeFile(
    inventory,
    [
      `cluster: ${cluster}`,
      'postgres: { version: 15 }',
      'connection: { transport: local }',
      'hosts:',
      ...hostNames.map((h, i) =>
        // Hosts at one address need ports of their own (validation rejects a shared one); nothing listens on them.
        i === 0
          ? `  ${h}: { address: 127.0.0.1, role: primary, pgdata: ${join(dir, h)} }`
          : `  ${h}: { address: 127.0.0.1, role: standby, upstream: ${hostNames[0]}, pgdata: ${join(dir, h)}, postgres: { port: ${5432 + i} } }`,
      ),
      '',
    ].join('\n'),
  );
  // run and plan get the rig's inventory; every command gets its state directory.
  const base = (args: string[]) => [...args, ...(args[0] === 'run' || args[0] === 'plan' ? ['-i', inventory] : []), '--state-dir', stateDir];
  return {
    dir,
    stateDir,
    inventory,
    async playbook(name, lines) {
      const file = join(dir, name);
      await writeFile(file, lines.join('\n') + '\n');
      return file;
    },
    pgplay(args, options = {}) {
      return runCli(base(args), options);
    },
    spawn(args) {
      return spawnCli(base(args));
    },
  };
}

export interface JournalLine {
  type: string;
  step?: string;
  host?: string;
  status?: string;
  exitCode?: number;
  msg?: string;
  error?: { code: string; message: string; step?: string; host?: string };
  runId?: string;
  resumeOf?: string | null;
}

/** Every journal in the state directory, oldest first, as parsed lines. */
export async function journals(stateDir: string): Promise<Array<{ id: string; lines: JournalLine[] }>> {
  const runs = join(stateDir, 'runs');
  const names = (await readdir(runs).catch(() => [] as string[])).filter((n) => n.endsWith('.jsonl'));
  const all = await Promise.all(
    names.map(async (n) => ({
      id: n.replace(/\.jsonl$/, ''),
      lines: (await readFile(join(runs, n), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as JournalLine),
    })),
  );
  // In start order: run ids name the second only, and two runs of one second sort by their random suffix.
  const started = (j: (typeof all)[number]) => String((j.lines[0] as { started?: string }).started ?? '');
  return all.sort((a, b) => started(a).localeCompare(started(b)) || a.id.localeCompare(b.id));
}

export function results(lines: JournalLine[]): string[] {
  return lines.filter((l) => l.type === 'step-result').map((l) => `${l.step}@${l.host}=${l.status}`);
}

/** Resolves once the child has printed a line matching `re` on stdout. */
export function waitForOutput(child: ResultPromise, re: RegExp, stream: 'stdout' | 'stderr' = 'stdout', timeoutMs = 30_000): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no output matching ${re} within ${timeoutMs}ms; got:\n${seen}`)), timeoutMs);
    child[stream]!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (re.test(seen)) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
  });
}

export async function readLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean);
}
