/** The environment of a server pgplay starts. */

/**
 * The PATH of a server pgplay starts: archive_command, restore_command and friends find their tools
 * here, the same whoever (and from wherever) pgplay was run. The preflight action checks tools on it.
 */
export const SERVER_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The locale variables glibc reads (locale(7)): LANG, LC_ALL and each category. */
const LOCALE_VARIABLES = [
  'LANG',
  'LC_ALL',
  'LC_ADDRESS',
  'LC_COLLATE',
  'LC_CTYPE',
  'LC_IDENTIFICATION',
  'LC_MEASUREMENT',
  'LC_MESSAGES',
  'LC_MONETARY',
  'LC_NAME',
  'LC_NUMERIC',
  'LC_PAPER',
  'LC_TELEPHONE',
  'LC_TIME',
];

/** cleanServerEnv's exit status when it could not make the log file's directory (pg_ctl's own are 0 to 4). */
export const LOG_DIRECTORY_FAILED = 90;

/**
 * Starts argv (pg_ctl) with a clean environment: only PATH (SERVER_PATH), PGDATA and the locale
 * (LOCALE_VARIABLES, each that is set to a plain value: letters, digits, `_.@-`) of the session. The
 * postmaster and every command it runs inherit this environment, so nothing of pgplay's own (its PATH,
 * PGPLAY_* variables, secrets of other tools) leaks into them. The shell picks the locale itself, without
 * a process (`env | grep` was three, on the way of every start); the names are fixed words, so `eval`
 * only reads a variable. `logDirectory` (the server log's) is made first where it is missing, in the same
 * shell (a command fewer on the start's way, and no mkdir at all where it is there); when it cannot be, the
 * shell exits LOG_DIRECTORY_FAILED with mkdir's message and starts nothing.
 */
export function cleanServerEnv(pgdata: string, argv: string[], logDirectory = ''): string[] {
  const script =
    'pgdata=$1; dir=$2; shift 2; ' +
    `if [ -n "$dir" ] && [ ! -d "$dir" ]; then LC_ALL=C mkdir -p -- "$dir" || exit ${LOG_DIRECTORY_FAILED}; fi; ` +
    'locale=; ' +
    `for n in ${LOCALE_VARIABLES.join(' ')}; do ` +
    'eval "set_=\\${$n+1} value=\\${$n-}"; [ -n "$set_" ] || continue; ' +
    "case $value in *[!A-Za-z0-9_.@-]*) continue ;; esac; " +
    'locale="$locale $n=$value"; done; ' +
    // The values hold no blank nor pattern character: split into words, each one assignment.
    `set -- PATH=${SERVER_PATH} "PGDATA=$pgdata" $locale "$@"; ` +
    'exec env -i "$@"';
  return ['/bin/sh', '-c', script, 'pgplay-clean-env', pgdata, logDirectory, ...argv];
}
