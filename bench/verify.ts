/**
 * Before anything is timed: proves both tools do the same work. A first run must change every step
 * on every host, a second run must change nothing, and the two tools must leave the same tree
 * (paths, types, modes, bytes) on every host. A benchmark of tools that do different things, or of
 * a run that silently failed, would be worthless.
 */
import { spawn } from 'node:child_process';
import { lstat, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface Recap {
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
}

export interface RunCapture {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function capture(command: string, env: NodeJS.ProcessEnv): Promise<RunCapture> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ exitCode: code ?? 255, stdout, stderr }));
  });
}

/** The run-end event of `pgplay run --output json`: per host ok/changed/skipped/failed/unreachable. */
export function pgplayRecap(run: RunCapture): Record<string, Recap> {
  const end = run.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; recap?: Record<string, Recap & { skipped: number }> })
    .find((e) => e.type === 'run-end');
  if (!end?.recap) throw new Error(`pgplay printed no run-end event (exit ${run.exitCode}):\n${run.stdout}\n${run.stderr}`);
  // Ansible's ok counts changed tasks too; pgplay's does not. Report it Ansible's way.
  return Object.fromEntries(
    Object.entries(end.recap).map(([h, r]) => [h, { ok: r.ok + r.changed, changed: r.changed, failed: r.failed, unreachable: r.unreachable }]),
  );
}

/** Ansible's PLAY RECAP lines: `h01 : ok=20 changed=20 unreachable=0 failed=0 ...`. */
export function ansibleRecap(run: RunCapture): Record<string, Recap> {
  const out: Record<string, Recap> = {};
  for (const m of run.stdout.matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    out[m[1]!] = { ok: Number(m[2]), changed: Number(m[3]), unreachable: Number(m[4]), failed: Number(m[5]) };
  }
  if (Object.keys(out).length === 0) throw new Error(`ansible-playbook printed no PLAY RECAP (exit ${run.exitCode}):\n${run.stdout}\n${run.stderr}`);
  return out;
}

/** Throws unless every host ran every step, without failure, changing exactly `changed` of them. */
export function expectRecap(tool: string, recap: Record<string, Recap>, hosts: string[], steps: number, changed: number): void {
  for (const h of hosts) {
    const r = recap[h];
    if (!r || r.ok !== steps || r.changed !== changed || r.failed !== 0 || r.unreachable !== 0) {
      throw new Error(`${tool} on ${h}: expected ok=${steps} changed=${changed} failed=0 unreachable=0, got ${JSON.stringify(r)}`);
    }
  }
}

interface Entry {
  path: string;
  type: 'dir' | 'file' | 'other';
  mode: string;
  content?: string;
}

async function walk(dir: string, rel = ''): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = join(rel, name);
    const st = await lstat(join(dir, path));
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    if (st.isDirectory()) {
      out.push({ path, type: 'dir', mode }, ...(await walk(dir, path)));
    } else if (st.isFile()) {
      out.push({ path, type: 'file', mode, content: await readFile(join(dir, path), 'utf8') });
    } else {
      out.push({ path, type: 'other', mode });
    }
  }
  return out;
}

/** Throws at the first path where the two tools' results differ on a host. */
export async function expectSameTrees(pgplayTargets: string, ansibleTargets: string, hosts: string[]): Promise<void> {
  for (const h of hosts) {
    const a = await walk(join(pgplayTargets, h));
    const b = await walk(join(ansibleTargets, h));
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
        throw new Error(`pgplay and Ansible left different results on ${h}:\n  pgplay:  ${JSON.stringify(a[i])}\n  ansible: ${JSON.stringify(b[i])}`);
      }
    }
  }
}
