import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { finished } from '../support/cli.js';
import { journals, localRig, readLines, results, waitForOutput, type LocalRig } from './faults-support.js';

/**
 * The operator's terminal goes away in the middle of a run: the SSH session drops (SIGHUP), or whatever
 * read pgplay's output has gone (`| tee` killed, a closed pipe: every later write fails with EPIPE). Either
 * used to end the process on the spot, in the middle of a step: its locks left behind (the next run
 * refused with a stale lock until --force), its journal without an end, a drill's teardown or a
 * procedure's cleanup steps never run. Both must end the run as SIGTERM does: the running steps finish
 * within the grace period, nothing new starts, the journal says interrupted, the locks are released, exit 130.
 * A run started under nohup asked for hangups to be ignored (node resets that on its own start; bin/pgplay
 * keeps it): it runs to its end.
 */
const BIN = resolve('bin/pgplay');
/** One rig per test (its own cluster, lock and journal): a run that died holding its lock spoils no other test. */
const rigs: LocalRig[] = [];

/** A two-host rig whose playbook naps on both hosts, then runs a step that must not start once interrupted. */
async function napsRig(cluster: string): Promise<{ rig: LocalRig; playbook: string }> {
  const rig = await localRig(cluster);
  rigs.push(rig);
  const out = join(rig.dir, 'out');
  const playbook = await rig.playbook('naps.yml', [
    'name: naps',
    'params:',
    '  nap: { type: integer, default: 2 }',
    'steps:',
    '  - id: nap',
    '    hosts: all',
    `    command: { shell: "sleep {{params.nap}}; echo {{host.name}} >> ${out}/naps" }`,
    '  - id: after',
    '    hosts: all',
    `    command: { shell: "echo {{host.name}} >> ${out}/after" }`,
  ]);
  return { rig, playbook };
}

afterAll(async () => {
  await Promise.all(rigs.map((rig) => rm(rig.dir, { recursive: true, force: true })));
});

/** What every interrupted run here must show: naps done, nothing after, journaled as interrupted, unlocked. */
async function expectInterruptedCleanly(rig: LocalRig, cluster: string, interruptedBy: string): Promise<void> {
  expect((await readLines(join(rig.dir, 'out', 'naps'))).sort()).toEqual(['h1', 'h2']);
  expect(existsSync(join(rig.dir, 'out', 'after'))).toBe(false);
  const journal = (await journals(rig.stateDir)).at(-1)!;
  expect(results(journal.lines).sort()).toEqual(['nap@h1=changed', 'nap@h2=changed']);
  expect(journal.lines.some((l) => l.type === 'step-start' && l.step === 'after')).toBe(false);
  expect(journal.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'interrupted', exitCode: 130, interruptedBy });
  expect(existsSync(join(rig.stateDir, 'locks', `${cluster}.lock`))).toBe(false);
}

describe('the terminal goes away during a run', () => {
  it('SIGHUP ends the run as SIGTERM does: running steps finish, nothing new starts, journaled, unlocked, exit 130', async () => {
    const { rig, playbook } = await napsRig('hangup');
    const child = rig.spawn(['run', playbook, '--output', 'json']);
    await waitForOutput(child, /"type":"step-start","step":"nap"/);
    child.kill('SIGHUP');
    const r = finished(await child);
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('hung up (SIGHUP): finishing running steps');
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/"type":"run-end".*"status":"interrupted"/);
    await expectInterruptedCleanly(rig, 'hangup', 'hung up (SIGHUP)');
  });

  it('a closed output (EPIPE) ends the run the same way instead of killing it in the middle of a step', async () => {
    const { rig, playbook } = await napsRig('epipe');
    const child = rig.spawn(['run', playbook, '--output', 'json']);
    await waitForOutput(child, /"type":"step-start","step":"nap"/);
    // The reader goes away: the naps' results are the next writes, and they fail with EPIPE.
    child.stdout!.destroy();
    const r = finished(await child);
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('the output was closed (EPIPE): finishing running steps');
    // No stack trace of an unhandled 'error' event: the process ended as pgplay ends it.
    expect(r.stderr).not.toMatch(/Unhandled 'error' event|at .*\(node:/);
    await expectInterruptedCleanly(rig, 'epipe', 'the output was closed (EPIPE)');
  });

  it('a run started under nohup ignores the hangup and runs to its end (bin/pgplay keeps what nohup asked)', async () => {
    const { rig, playbook } = await napsRig('nohup');
    const child = execa('nohup', [BIN, 'run', playbook, '-i', rig.inventory, '--state-dir', rig.stateDir, '--output', 'json'], {
      reject: false,
      env: { CI: 'true' },
      timeout: 60_000,
    });
    await waitForOutput(child, /"type":"step-start","step":"nap"/);
    child.kill('SIGHUP');
    const r = finished(await child);
    expect(r.exitCode).toBe(0);
    expect((await readLines(join(rig.dir, 'out', 'after'))).sort()).toEqual(['h1', 'h2']);
    expect((await journals(rig.stateDir)).at(-1)!.lines.at(-1)).toMatchObject({ type: 'run-end', status: 'ok' });
    expect(existsSync(join(rig.stateDir, 'locks', 'nohup.lock'))).toBe(false);
  });
});
