/**
 * The one change pgplay makes to a user's postgresql.conf: an include_dir line for the directory
 * where pgplay writes its own files (conf.d/pgplay.conf, conf.d/pgplay-recovery.conf). Everything
 * else in the file stays the user's.
 */

export const PGPLAY_CONF_DIR = 'conf.d';
export const PGPLAY_CONF_FILE = `${PGPLAY_CONF_DIR}/pgplay.conf`;
const MARK = '# added by pgplay: its settings live in this directory';

/** Whether an active (uncommented) include_dir line already names `dir`. */
export function hasIncludeDir(conf: string, dir = PGPLAY_CONF_DIR): boolean {
  const want = dir.replace(/\/+$/, '');
  for (const raw of conf.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    const m = /^include_dir\s*=?\s*'((?:[^'\\]|''|\\.)*)'/.exec(line) ?? /^include_dir\s*=?\s*([^\s#']+)/.exec(line);
    if (!m) continue;
    const value = m[1]!.replace(/''/g, "'").replace(/\/+$/, '');
    if (value === want) return true;
  }
  return false;
}

/**
 * postgresql.conf with `include_dir = '<dir>'` appended when it is missing (Debian's file has it
 * already). Appended last so pgplay's settings win over the defaults above them.
 */
export function ensureIncludeDir(conf: string, dir = PGPLAY_CONF_DIR): { text: string; changed: boolean } {
  if (hasIncludeDir(conf, dir)) return { text: conf, changed: false };
  const sep = conf === '' || conf.endsWith('\n') ? '' : '\n';
  return { text: `${conf}${sep}\n${MARK}\ninclude_dir = '${dir.replace(/'/g, "''")}'\n`, changed: true };
}
