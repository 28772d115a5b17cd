/** The environment of a server pgplay starts. */

/**
 * The PATH of a server pgplay starts: archive_command, restore_command and friends find their tools
 * here, the same whoever (and from wherever) pgplay was run. The preflight action checks tools on it.
 */
export const SERVER_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Starts argv (pg_ctl) with a clean environment: only PATH (SERVER_PATH), PGDATA and the locale
 * (LANG, LC_*) of the session. The postmaster and every command it runs inherit this environment, so
 * nothing of pgplay's own (its PATH, PGPLAY_* variables, secrets of other tools) leaks into them.
 */
export function cleanServerEnv(pgdata: string, argv: string[]): string[] {
  const script =
    'pgdata=$1; shift; ' +
    `set -- PATH=${SERVER_PATH} "PGDATA=$pgdata" $(env | grep -E '^(LANG|LC_[A-Z_]+)=[A-Za-z0-9_.@-]*$') "$@"; ` +
    'exec env -i "$@"';
  return ['/bin/sh', '-c', script, 'pgplay-clean-env', pgdata, ...argv];
}
