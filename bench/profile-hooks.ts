/**
 * Loaded with `node --import` ahead of the real CLI (dist/cli/main.js) to see where a run's time
 * goes, without changing pgplay: it loads the CLI's module graph itself (timing module loading),
 * wraps the SSH transport's methods on its prototype (the CLI gets the same module instance) to
 * record every round trip, and writes the timeline to $PGPLAY_BENCH_PROFILE when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Call {
  host: string;
  /** connect, exec, readFile, stat, writeFile, close; exec of the facts script is "facts", of the read-ahead script "read-ahead". */
  kind: string;
  start: number;
  end: number;
}

/** Milliseconds since the process started (performance.timeOrigin). */
export interface Profile {
  preloadStart: number;
  modulesLoaded: number;
  exit: number;
  calls: Call[];
}

const target = process.env.PGPLAY_BENCH_PROFILE;
const DIST = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const profile: Profile = { preloadStart: performance.now(), modulesLoaded: 0, exit: 0, calls: [] };

// Everything a run over SSH imports (main.js's own imports, the run command, and the SSH transport
// on first use), so the CLI itself finds its modules already evaluated.
for (const m of ['cli/args.js', 'cli/help.js', 'cli/extra-commands.js', 'cli/commands/run.js', 'transports/ssh.js']) {
  await import(pathToFileURL(join(DIST, m)).href);
}
profile.modulesLoaded = performance.now();

const { SshTransport } = (await import(pathToFileURL(join(DIST, 'transports/ssh.js')).href)) as {
  SshTransport: { prototype: Record<string, unknown> };
};
for (const kind of ['connect', 'exec', 'readFile', 'stat', 'writeFile', 'close']) {
  const original = SshTransport.prototype[kind] as (this: { hostName: string }, ...args: unknown[]) => Promise<unknown>;
  SshTransport.prototype[kind] = async function (this: { hostName: string }, ...args: unknown[]) {
    const start = performance.now();
    const argv = args[0] as string[] | undefined;
    const isFacts = kind === 'exec' && argv?.[0] === '/bin/sh' && String(argv[2] ?? '').includes('pgplay-facts');
    const isReadAhead = kind === 'exec' && argv?.[3] === 'pgplay-read-ahead';
    try {
      return await original.apply(this, args);
    } finally {
      profile.calls.push({ host: this.hostName, kind: isFacts ? 'facts' : isReadAhead ? 'read-ahead' : kind, start, end: performance.now() });
    }
  };
}

process.on('exit', () => {
  profile.exit = performance.now();
  if (target) writeFileSync(target, JSON.stringify(profile));
});
