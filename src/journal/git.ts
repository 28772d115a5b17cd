import { execa } from 'execa';
import { basename, dirname } from 'node:path';

/**
 * The commit a playbook was run from and whether the file differed from it, so a journal says exactly
 * which version of a runbook ran. Null when the file is not in a git work tree or git is missing.
 */
export async function gitInfo(file: string): Promise<{ commit: string; dirty: boolean } | null> {
  const dir = dirname(file);
  const git = (args: string[]) =>
    execa('git', ['-C', dir, ...args], { reject: false, timeout: 5000, stdin: 'ignore', env: { GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' } });
  const head = await git(['rev-parse', '--verify', '-q', 'HEAD']).catch(() => undefined);
  if (!head || head.exitCode !== 0 || !/^[0-9a-f]{40,64}$/.test(head.stdout.trim())) return null;
  // Untracked (??) and modified files both count as dirty: neither is what the commit holds.
  const status = await git(['status', '--porcelain', '--', basename(file)]).catch(() => undefined);
  const dirty = !status || status.exitCode !== 0 || status.stdout.trim() !== '';
  return { commit: head.stdout.trim(), dirty };
}
