import type { FileStat, FileType, WriteFileOptions } from '../types.js';
import { PREVIOUS_SUFFIX } from '../types.js';

/**
 * File operations on a remote host, as fixed POSIX sh scripts run through `sh -c SCRIPT name args`.
 * The scripts never change; every value (path, mode, owner) travels as a positional argument, so
 * nothing from a playbook is parsed by a shell. They run as the become user, which is what lets a
 * root login write into a 0700 PGDATA owned by postgres and leave the file owned by postgres.
 */

/** Exit status meaning "no such file"; any other failure is an error. */
export const MISSING_STATUS = 44;

const READ_SCRIPT = `[ -e "$1" ] || exit ${MISSING_STATUS}
exec cat -- "$1"`;

// lstat semantics (a symlink is reported as such, with its target), like the local transport.
const STAT_SCRIPT = `set -e
[ -e "$1" ] || [ -L "$1" ] || exit ${MISSING_STATUS}
stat -c '%f %a %U %G %s' -- "$1"
if [ -L "$1" ]; then readlink -- "$1"; fi`;

// Atomic replace: the data lands in a temp file in the target's directory (same filesystem, so
// mv is a rename(2)), gets its owner then mode (chown clears setuid bits), is fsync'd, and only
// then replaces the target. Without an explicit mode/owner an existing file keeps its own;
// a new file gets the umask default as any other write would.
const WRITE_SCRIPT = `set -eu
target=$1 mode=$2 owner=$3 group=$4 keep=$5
case $target in
  */*) dir=\${target%/*}; [ -n "$dir" ] || dir=/ ;;
  *) dir=. ;;
esac
base=\${target##*/}
tmp=$(mktemp "$dir/.$base.pgplay-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
if [ -n "$owner$group" ]; then
  chown -- "$owner\${group:+:$group}" "$tmp"
elif [ -e "$target" ]; then
  chown --reference="$target" -- "$tmp" 2>/dev/null || true
fi
if [ -n "$mode" ]; then
  chmod -- "$mode" "$tmp"
elif [ -e "$target" ]; then
  chmod --reference="$target" -- "$tmp"
else
  chmod -- "$(printf '%o' $(( 0666 & ~$(umask) )))" "$tmp"
fi
sync -- "$tmp" 2>/dev/null || sync
if [ -n "$keep" ] && [ -f "$target" ]; then
  cp -p -- "$target" "$target${PREVIOUS_SUFFIX}"
  echo kept
fi
mv -f -T -- "$tmp" "$target"
trap - EXIT
sync -- "$dir" 2>/dev/null || true`;

export function readFileArgv(path: string): string[] {
  return ['sh', '-c', READ_SCRIPT, 'pgplay-read', path];
}

export function statArgv(path: string): string[] {
  return ['sh', '-c', STAT_SCRIPT, 'pgplay-stat', path];
}

export function writeFileArgv(path: string, options: WriteFileOptions): string[] {
  const mode = options.mode === undefined ? '' : `0${(options.mode & 0o7777).toString(8)}`;
  return [
    'sh',
    '-c',
    WRITE_SCRIPT,
    'pgplay-write',
    path,
    mode,
    options.owner ?? '',
    options.group ?? '',
    options.keepPrevious ? '1' : '',
  ];
}

/** Whether the write script reported keeping the previous file. */
export function keptPrevious(stdout: string): boolean {
  return stdout.split('\n').includes('kept');
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
