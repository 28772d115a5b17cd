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
  const useRunuser = method === 'runuser' || (method === 'auto' && currentUser === 'root');
  return useRunuser ? ['runuser', '-u', user, '--', ...argv] : ['sudo', '-n', '-H', '-u', user, '--', ...argv];
}
