import { homedir } from 'node:os';

/** `~` and `~/x` as a shell would expand them for the user running pgplay. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return `${home}/${path.slice(2)}`;
  return path;
}
