import type { FileStat, FileType, WriteFileOptions } from './types.js';
import { PREVIOUS_SUFFIX } from './types.js';

/**
 * File operations as commands, for the SSH transport and for the local one when it must act through
 * sudo, as fixed POSIX sh scripts run through `sh -c SCRIPT name args`.
 * The scripts never change; every value (path, mode, owner) travels as a positional argument, so
 * nothing from a playbook is parsed by a shell. They run as the become user, which is what lets a
 * root login write into a 0700 PGDATA owned by postgres and leave the file owned by postgres.
 */

/** Exit status meaning "no such file"; any other failure is an error. */
export const MISSING_STATUS = 44;

const READ_SCRIPT = `[ -e "$1" ] || exit ${MISSING_STATUS}
exec cat -- "$1"`;

/** What stat prints for a path, as parseStat reads it: raw mode (hex), permissions (octal), owner, group, size. */
export const STAT_FORMAT = '%f %a %U %G %s';

// lstat semantics (a symlink is reported as such, with its target), like the local transport.
const STAT_SCRIPT = `set -e
[ -e "$1" ] || [ -L "$1" ] || exit ${MISSING_STATUS}
stat -c '${STAT_FORMAT}' -- "$1"
if [ -L "$1" ]; then readlink -- "$1"; fi`;

export function readFileArgv(path: string): string[] {
  return ['sh', '-c', READ_SCRIPT, 'pgplay-read', path];
}

export function statArgv(path: string): string[] {
  return ['sh', '-c', STAT_SCRIPT, 'pgplay-stat', path];
}

/**
 * The local transport's atomic write script, so a file lands the same way on every transport:
 * temp file in the same directory, owner then mode, fsync, previous file kept, rename, directory
 * fsync; a symlinked target is written through. Prints the kept previous path.
 */
export function writeFileArgv(path: string, options: WriteFileOptions, size?: number): string[] {
  return [
    'sh',
    '-c',
    ATOMIC_WRITE_SCRIPT,
    'pgplay-write',
    ...writeFileFields(path, options),
    // The byte count lets the script tell a lost connection (early end of stdin) from the end of the data.
    ...(size === undefined ? [] : [String(size)]),
  ];
}

/** What the write script is told (dest mode owner group keep-previous previous-suffix), and a command helper's write_file too. */
export function writeFileFields(path: string, options: WriteFileOptions): string[] {
  const mode = options.mode === undefined ? '' : (options.mode & 0o7777).toString(8).padStart(4, '0');
  return [path, mode, options.owner ?? '', options.group ?? '', options.keepPrevious ? '1' : '', PREVIOUS_SUFFIX];
}

/** The previous file the write script reports having kept, if any. */
export function keptPrevious(stdout: string): string | undefined {
  return stdout.trim() || undefined;
}

/** Parses the stat script's output: `<raw mode hex> <perm octal> <owner> <group> <size>` [+ link target]. */
export function parseStat(stdout: string): FileStat {
  const newline = stdout.indexOf('\n');
  const first = newline === -1 ? stdout : stdout.slice(0, newline);
  const rest = newline === -1 ? '' : stdout.slice(newline + 1);
  const [rawHex, perm, owner, group, size] = first.trim().split(' ');
  const raw = parseInt(rawHex ?? '', 16);
  if (Number.isNaN(raw) || perm === undefined || owner === undefined || group === undefined || size === undefined) {
    throw new Error(`unexpected stat output: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const type = fileType(raw);
  const stat: FileStat = { exists: true, type, mode: parseInt(perm, 8), owner, group, size: Number(size) };
  if (type === 'symlink') stat.linkTarget = rest.endsWith('\n') ? rest.slice(0, -1) : rest;
  return stat;
}

function fileType(rawMode: number): FileType {
  switch (rawMode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

/**
 * Positional args: dest mode owner group keep-previous previous-suffix [size]. Prints the previous
 * file's path when one was kept. mktemp creates the temp file 0600 with O_EXCL, so data never sits in
 * a file others can read. With size, data that ends early (stdin closed by a lost SSH connection,
 * which cat takes for a normal end) is refused instead of installed as a truncated file. Signals (a
 * hang-up, a write to the closed stderr of a lost session) exit through the trap, which removes the
 * temp file.
 */
export const ATOMIC_WRITE_SCRIPT = `set -eu
dest=$1; mode=$2; owner=$3; group=$4; keep=$5; suffix=$6; size=\${7:-}
if [ -L "$dest" ] && [ -e "$dest" ]; then dest=$(readlink -f -- "$dest"); fi
if [ -e "$dest" ] && [ ! -f "$dest" ]; then echo "it exists and is not a regular file" >&2; exit 1; fi
# dirname and basename without two processes: dest is absolute (a file path, never ending in /).
case $dest in
  */) echo "not a file path (it ends with /)" >&2; exit 1 ;;
  */*) dir=\${dest%/*}; base=\${dest##*/}; [ -n "$dir" ] || dir=/ ;;
  *) dir=.; base=$dest ;;
esac
tmp=$(mktemp -- "$dir/.$base.pgplay-tmp-XXXXXX")
prevtmp=
trap 'rm -f -- "$tmp" \${prevtmp:+"$prevtmp"}' EXIT
trap 'exit 1' HUP INT TERM PIPE
cat > "$tmp"
if [ -n "$size" ]; then
  got=$(( $(wc -c < "$tmp") ))
  if [ "$got" -ne "$size" ]; then echo "incomplete data: received $got of $size bytes; $dest was left as it was" >&2; exit 1; fi
fi
if [ -e "$dest" ]; then
  [ -n "$mode" ] || mode=$(stat -c %a -- "$dest")
  [ -n "$owner" ] || owner=$(stat -c %u -- "$dest")
  [ -n "$group" ] || group=$(stat -c %g -- "$dest")
else
  [ -n "$mode" ] || mode=$(printf '%o' $(( 0666 & ~0$(umask) )))
fi
if [ -n "$owner" ] || [ -n "$group" ]; then chown -- "$owner\${group:+:$group}" "$tmp"; fi
chmod -- "$mode" "$tmp"
sync -- "$tmp" 2>/dev/null || sync
if [ -n "$keep" ] && [ -e "$dest" ]; then
  prevtmp=$(mktemp -u -- "$dir/.$base$suffix.pgplay-tmp-XXXXXX")
  ln -- "$dest" "$prevtmp" 2>/dev/null || cp -p -- "$dest" "$prevtmp"
  mv -f -- "$prevtmp" "$dest$suffix"
  prevtmp=
  printf '%s\\n' "$dest$suffix"
fi
mv -f -- "$tmp" "$dest"
trap - EXIT
sync -- "$dir" 2>/dev/null || true
`;
