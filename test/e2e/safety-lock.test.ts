import { existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finished } from '../support/cli.js';
import { journals, localRig, readLines, results, waitForOutput, type LocalRig } from './faults-support.js';

/**
 * One run at a time per cluster, with real processes: a second run exits 3 naming the holder, a plan
 * runs beside it, and a run killed with SIGKILL leaves a stale lock that is reported and taken over
 * only with --force (and its journal can then be resumed).
 */
/** Process-group leaders (the step's shell) whose command line mentions `marker`. */
async function orphans(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const pgid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
      if (cmdline.includes(marker) && pgid === Number(entry)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

let rig: LocalRig;
let napper: string;
let quick: string;

beforeAll(async () => {
  rig = await localRig('locked');
  const out = join(rig.dir, 'out');
  napper = await rig.playbook('napper.yml', [
    'name: napper',
    'params:',
    '  linger: { type: integer, default: 2 }',
    // A gate file the nap waits for, so the test decides when the holder lets go of the lock.
    "  gate: { type: string, default: '' }",
    'steps:',
    '  - id: nap',
    '    hosts: h1',
    `    command: { shell: "if [ -n '{{params.gate}}' ]; then until [ -e '{{params.gate}}' ]; do sleep 0.1; done; else sleep 3; fi; echo nap >> ${out}/napper" }`,
    '  - id: after',
    '    hosts: h1',
    `    command: { shell: "sleep {{params.linger}}; echo after >> ${out}/napper" }`,
  ]);
  quick = await rig.playbook('quick.yml', ['name: quick', 'steps:', '  - id: touch', '    hosts: all', `    command: { shell: "echo {{host.name}} >> ${out}/quick" }`]);
});

afterAll(async () => {
  await rm(rig.dir, { recursive: true, force: true });
});

describe('the cluster lock between real runs', () => {
  it('refuses a second run with exit 3 naming the holder; a plan runs beside it; the lock goes with the run', async () => {
    const gate = join(rig.dir, 'out', 'gate');
    const holder = rig.spawn(['run', napper, '-p', `gate=${gate}`, '-p', 'linger=0']);
    await waitForOutput(holder, /STEP nap/);
    const lock = JSON.parse(await readFile(join(rig.stateDir, 'locks', 'locked.lock'), 'utf8')) as { runId: string; pid: number };
    expect(lock.pid).toBe(holder.pid);

    const second = await rig.pgplay(['run', quick]);
    expect(second.exitCode).toBe(3);
    expect(second.stderr).toMatch(
      new RegExp(`^error: cluster "locked" is locked by run ${lock.runId} \\(pid ${holder.pid} on ${hostname()}, playbook ${napper}, since \\S+\\)\\n  hint: one run at a time per cluster: wait for that run to finish$`),
    );
    expect(existsSync(join(rig.dir, 'out', 'quick'))).toBe(false);

    const plan = await rig.pgplay(['plan', quick]);
    expect(plan.exitCode).toBe(0);
    expect(plan.stdout).toContain('[check mode: nothing will be changed]');

    await writeFile(gate, '');
    expect(finished(await holder).exitCode).toBe(0);
    expect(existsSync(join(rig.stateDir, 'locks', 'locked.lock'))).toBe(false);
    const after = await rig.pgplay(['run', quick]);
    expect(after.exitCode).toBe(0);
    expect((await readLines(join(rig.dir, 'out', 'quick'))).sort()).toEqual(['h1', 'h2']);
    // The refused run left no journal: the journals are the napper run, the plan and the last run.
    expect((await journals(rig.stateDir)).map((j) => (j.lines[0] as { playbook?: string }).playbook)).toEqual([napper, quick, quick]);
  });

  it('a run killed with SIGKILL leaves a stale lock: reported (exit 3), taken over with --force, its journal resumable', async () => {
    await rm(join(rig.dir, 'out', 'napper'), { force: true });
    const victim = rig.spawn(['run', napper, '-p', 'linger=60']);
    // Killed while `after` runs: the nap finished and is journaled.
    await waitForOutput(victim, /STEP after/);
    const killedRun = (await journals(rig.stateDir)).at(-1)!;
    victim.kill('SIGKILL');
    await victim;
    // SIGKILL gives pgplay no chance to stop its command, which lingers in its own process group;
    // stop it by pid so it cannot write after the resumed run.
    for (const pid of await orphans(`${join(rig.dir, 'out')}/napper`)) process.kill(-pid, 'SIGKILL');
    expect(existsSync(join(rig.stateDir, 'locks', 'locked.lock'))).toBe(true);

    const refused = await rig.pgplay(['run', quick]);
    expect(refused.exitCode).toBe(3);
    expect(refused.stderr).toContain(
      `error: cluster "locked" has a stale lock: run ${killedRun.id} (pid ${victim.pid} on ${hostname()}, playbook ${napper}, since `,
    );
    expect(refused.stderr).toMatch(/is no longer running\n {2}hint: .*rerun with --force to take the lock over$/);

    const history = await rig.pgplay(['history', '--limit', '1']);
    expect(history.stdout).toMatch(new RegExp(`\\n${killedRun.id} +\\S+ +incomplete +`));

    const resumed = await rig.pgplay(['run', napper, '--resume', killedRun.id, '--force', '-p', 'linger=0']);
    expect(resumed.exitCode, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(`pgplay: --force: took over the stale lock of run ${killedRun.id} (pid ${victim.pid}`);
    const last = (await journals(rig.stateDir)).at(-1)!;
    expect(results(last.lines)).toEqual(['nap@h1=skipped', 'after@h1=changed']);
    expect(await readLines(join(rig.dir, 'out', 'napper'))).toEqual(['nap', 'after']);
    expect(existsSync(join(rig.stateDir, 'locks', 'locked.lock'))).toBe(false);
  });
});
