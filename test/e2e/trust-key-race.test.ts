/**
 * The trust includes' `key` step (pgBackRest's and Barman's) on inventory hosts that share one machine and
 * one home, as the lab's hosts do: the step runs on all of them at the same moment. Without a lock each saw
 * no key, ran ssh-keygen, and all but one failed on "Overwrite (y/n)?" (a run over SSH on a fresh machine
 * stopped at pgbackrest-trust/key). Runs the shipped script itself, rendered as the engine renders it, six
 * times at once for a throwaway system user, and asserts that every one succeeds with the same public key.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SHIPPED_PLAYBOOKS, SHIPPED_TEMPLATES } from '../../src/core/paths.js';
import { createRenderer } from '../../src/render/index.js';

const USER = `pgplaykr${process.pid % 100000}`;
let home = '';

function keyScript(include: string, role: string): string {
  const doc = parse(readFileSync(join(SHIPPED_PLAYBOOKS, include), 'utf8')) as { steps: { id: string; command: { shell: string } }[] };
  const step = doc.steps.find((s) => s.id === 'key')!;
  const renderer = createRenderer({ templateDirs: [SHIPPED_TEMPLATES] });
  return renderer.renderString(step.command.shell, { host: { name: 'db1', role, postgres: { osUser: USER } } }, `${include}#key`);
}

function run(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'pgplay-keyrace-'));
  const r = spawnSync('useradd', ['--system', '--home-dir', home, '--shell', '/usr/sbin/nologin', USER], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  spawnSync('chown', [`${USER}:`, home]);
});

afterAll(() => {
  spawnSync('userdel', [USER]);
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('the trust key step on hosts that share a home', () => {
  for (const [include, role] of [
    ['include/backup/pgbackrest/trust.yml', 'primary'],
    ['include/backup/barman/trust.yml', 'primary'],
  ] as const) {
    it(`${include}: six at once all succeed with one key pair, generated once`, async () => {
      rmSync(join(home, '.ssh'), { recursive: true, force: true });
      const script = keyScript(include, role);
      const results = await Promise.all(Array.from({ length: 6 }, () => run(script)));
      expect(results.map((r) => r.code), results.map((r) => r.stderr).join('\n')).toEqual([0, 0, 0, 0, 0, 0]);
      const keys = new Set(results.map((r) => r.stdout.trim()));
      expect(keys.size).toBe(1);
      expect([...keys][0]).toMatch(/^ssh-ed25519 /);
      expect(results.filter((r) => r.stderr.includes('pgplay-changed: ' + join(home, '.ssh', 'id_ed25519'))).length).toBe(1);
      expect(readFileSync(join(home, '.ssh', 'id_ed25519.pub'), 'utf8').trim()).toBe([...keys][0]);
    });
  }
});
