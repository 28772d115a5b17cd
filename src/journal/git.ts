import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * One git command in `dir`; ok is false when it failed, timed out or git is missing. node's execFile
 * rather than execa: this probe runs on every run, and execa alone takes ~100 ms to load.
 */
function git(dir: string, args: string[]): Promise<{ ok: boolean; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      'git',
      ['-C', dir, ...args],
      { timeout: 5000, encoding: 'utf8', env: { ...process.env, GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' } },
      (error, stdout) => resolve({ ok: !error, stdout }),
    );
    child.stdin?.end();
  });
}

/**
 * Whether git could find a repository for `dir`: it looks in `dir` and each directory above it for a
 * `.git` (a directory, or a file naming one) or for a directory that is itself a bare repository
 * (HEAD, objects and refs); GIT_DIR points it anywhere. Where none is, git cannot answer and is not
 * started: a process costs ~20 ms of the run's start, and most playbooks run outside any checkout.
 * The walk goes to the root whatever GIT_CEILING_DIRECTORIES or file system boundaries say, so
 * it may find a repository git would not (git then runs and says so), never the other way round.
 */
function mayBeInRepository(dir: string): boolean {
  if (process.env.GIT_DIR) return true;
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return true;
    if (existsSync(join(d, 'HEAD')) && existsSync(join(d, 'objects')) && existsSync(join(d, 'refs'))) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * The commit a playbook was run from and whether the file differed from it, so a journal says exactly
 * which version of a runbook ran. Null when the file is not in a git work tree or git is missing.
 */
export async function gitInfo(file: string): Promise<{ commit: string; dirty: boolean } | null> {
  const dir = dirname(file);
  if (!mayBeInRepository(dir)) return null;
  const head = await git(dir, ['rev-parse', '--verify', '-q', 'HEAD']);
  if (!head.ok || !/^[0-9a-f]{40,64}$/.test(head.stdout.trim())) return null;
  // Untracked (??) and modified files both count as dirty: neither is what the commit holds.
  const status = await git(dir, ['status', '--porcelain', '--', basename(file)]);
  const dirty = !status.ok || status.stdout.trim() !== '';
  return { commit: head.stdout.trim(), dirty };
}
