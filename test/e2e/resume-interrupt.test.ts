import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finished } from '../support/cli.js';
import { groupsGone, recordedGroups } from '../support/processes.js';
import { journals, localRig, readLines, results, waitForOutput, type LocalRig } from './faults-support.js';

/**
 * Ctrl-C for real: the CLI runs a step that sleeps 3 s on two hosts and gets SIGINT after 1 s. It
 * must let the running steps finish (grace period), start nothing new, journal the run as
 * interrupted, exit 130, release the lock; and --resume must finish the run without redoing the naps.
 */
let rig: LocalRig;
let playbook: string;
/** Each nap records its process group here first thing, so a test can tell "killed" from "not done yet". */
let groups: string;

beforeAll(async () => {
  rig = await localRig('sigint');
  const out = join(rig.dir, 'out');
  groups = join(rig.dir, 'groups');
  playbook = await rig.playbook('naps.yml', [
    'name: naps',
    'params:',
    '  nap: { type: integer, default: 3 }',
    'steps:',
    '  - id: nap',
    '    hosts: all',
    // The sleep holds none of the step's pipes, like a daemon a command leaves behind: a stop that
    // killed the shell alone would leave it running unseen by the run, but not by groupsGone.
    `    command: { shell: "ps -o pgid= -p $$ >> ${groups}; sleep {{params.nap}} >/dev/null 2>&1; echo {{host.name}} >> ${out}/naps" }`,
    '  - id: after',
    '    hosts: all',
    `    command: { shell: "echo {{host.name}} >> ${out}/after" }`,
  ]);
});

afterAll(async () => {
  await rm(rig.dir, { recursive: true, force: true });
});

describe('SIGINT during a run', () => {
  it('lets running steps finish, starts nothing new, journals interrupted and exits 130', async () => {
    const child = rig.spawn(['run', playbook, '--output', 'json']);
    await waitForOutput(child, /"type":"step-start","step":"nap"/);
    await new Promise((r) => setTimeout(r, 1000));
    const signalled = Date.now();
    child.kill('SIGINT');
    const r = finished(await child);

    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('interrupted: finishing running steps (Ctrl-C again to exit now)');
    // The naps ran to their end after the signal (the results below are changed, not killed with rc 143).
    expect((await readLines(join(rig.dir, 'out', 'naps'))).sort()).toEqual(['h1', 'h2']);
    expect(existsSync(join(rig.dir, 'out', 'after'))).toBe(false);

    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string; status?: string; time: string; durationMs?: number });
    expect(events.filter((e) => e.type === 'step-start').map((e) => e.step)).toEqual(['nap']);
    for (const nap of events.filter((e) => e.type === 'step-result')) {
      expect(Date.parse(nap.time)).toBeGreaterThan(signalled);
      expect(nap.durationMs).toBeGreaterThanOrEqual(3000);
    }
    expect(events.at(-1)).toMatchObject({ type: 'run-end', status: 'interrupted', exitCode: 130 });

    const [journal] = await journals(rig.stateDir);
    expect(results(journal!.lines).sort()).toEqual(['nap@h1=changed', 'nap@h2=changed']);
    expect(journal!.lines.some((l) => l.type === 'step-start' && l.step === 'after')).toBe(false);
    expect(journal!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'interrupted', exitCode: 130 });
    expect(existsSync(join(rig.stateDir, 'locks', 'sigint.lock'))).toBe(false);
  });

  it('--resume completes the run without redoing what finished', async () => {
    const r = await rig.pgplay(['run', playbook, '--resume']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/STEP nap: nap\n {2}skipped +h1 \(\d+ms\): done in run \S+\n {2}skipped +h2/);
    expect((await readLines(join(rig.dir, 'out', 'naps'))).sort()).toEqual(['h1', 'h2']);
    expect((await readLines(join(rig.dir, 'out', 'after'))).sort()).toEqual(['h1', 'h2']);
    const all = await journals(rig.stateDir);
    expect(all).toHaveLength(2);
    expect(all[1]!.lines[0]).toMatchObject({ type: 'journal', resumeOf: all[0]!.id });
    expect(all[1]!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'ok' });

    const history = await rig.pgplay(['history']);
    expect(history.exitCode).toBe(0);
    const rows = history.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^RUN +STARTED +STATUS +CHANGED +FAILED +PLAYBOOK$/);
    expect(rows[1]).toMatch(new RegExp(`^${all[1]!.id} +\\S+Z +ok +2 +0 +${playbook} \\(resumes ${all[0]!.id}\\)$`));
    expect(rows[2]).toMatch(new RegExp(`^${all[0]!.id} +\\S+Z +interrupted +2 +0 +${playbook}$`));
    const json = JSON.parse((await rig.pgplay(['history', '--output', 'json', '--limit', '2'])).stdout) as Array<Record<string, unknown>>;
    expect(json.map((j) => [j.id, j.status, j.interruptedBy, j.exitCode, j.resumeOf, j.changed, j.failed, j.playbook, j.cluster])).toEqual([
      [all[1]!.id, 'ok', null, 0, all[0]!.id, 2, 0, playbook, 'sigint'],
      [all[0]!.id, 'interrupted', 'interrupted by SIGINT', 130, null, 2, 0, playbook, 'sigint'],
    ]);
  });

  it('a step still running when the grace period ends is stopped', async () => {
    await rm(join(rig.dir, 'out', 'naps'), { force: true });
    await rm(groups, { force: true });
    const child = rig.spawn(['run', playbook, '-p', 'nap=30', '--grace', '1s']);
    await bothNapsRunning();
    child.kill('SIGINT');
    const r = finished(await child);
    expect(r.exitCode).toBe(130);
    // Stopped at the end of the 1 s grace period (rc 143: SIGTERM), not left to finish its 30 s nap.
    expect(r.stdout).toMatch(/failed +h1 .*rc 143/);
    expect(r.stdout).toMatch(/failed +h2 .*rc 143/);
    const all = await journals(rig.stateDir);
    expect(all.at(-1)!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'interrupted', exitCode: 130 });
    // The sleeping shells were stopped, not orphaned: no process of theirs is left (a nap that was not
    // killed would live on for 30 s), so nothing writes the marker later.
    await groupsGone(recordedGroups(groups));
    expect(existsSync(join(rig.dir, 'out', 'naps'))).toBe(false);
  });

  it('Ctrl-C twice exits at once, still journaled as interrupted and unlocked', async () => {
    await rm(groups, { force: true });
    const child = rig.spawn(['run', playbook, '-p', 'nap=30']);
    await bothNapsRunning();
    child.kill('SIGINT');
    await waitForOutput(child, /interrupted: finishing running steps/, 'stderr');
    child.kill('SIGINT');
    const r = finished(await child);
    expect(r.exitCode).toBe(130);
    const all = await journals(rig.stateDir);
    expect(all.at(-1)!.lines.at(-1)).toMatchObject({
      type: 'run-end',
      status: 'interrupted',
      exitCode: 130,
      error: { code: 'INTERRUPTED' },
      interruptedBy: 'pgplay exited at once (interrupted twice)',
    });
    expect(existsSync(join(rig.stateDir, 'locks', 'sigint.lock'))).toBe(false);
    // Exiting at once still stops the naps (a leftover nap would live on for 30 s).
    await groupsGone(recordedGroups(groups));
    expect(existsSync(join(rig.dir, 'out', 'naps'))).toBe(false);
  });
});

/** Both hosts' naps have started (each recorded its process group). */
async function bothNapsRunning(timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readLines(groups)).length < 2) {
    if (Date.now() > deadline) throw new Error(`the naps did not start within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
