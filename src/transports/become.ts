/**
 * Wraps an argv so it runs as another OS user. As root, runuser needs no password and no sudoers
 * entry; otherwise sudo -n fails fast instead of hanging on a password prompt.
 */
export type BecomeMethod = 'auto' | 'sudo' | 'runuser';

export function becomeArgv(
  argv: string[],
  user: string | undefined,
  currentUser: string,
  method: BecomeMethod = 'auto',
): string[] {
  if (!user || user === currentUser) return argv;
  return usesRunuser(method, currentUser === 'root') ? ['runuser', '-u', user, '--', ...argv] : ['sudo', '-n', '-H', '-u', user, '--', ...argv];
}

/** Whether another user's commands go through runuser (no password, no sudoers entry) rather than sudo -n. */
export function usesRunuser(method: BecomeMethod, asRoot: boolean): boolean {
  return method === 'runuser' || (method === 'auto' && asRoot);
}
