import { ATOMIC_WRITE_SCRIPT } from '../local.js';
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
  const mode = options.mode === undefined ? '' : (options.mode & 0o7777).toString(8).padStart(4, '0');
  return [
    'sh',
    '-c',
    ATOMIC_WRITE_SCRIPT,
    'pgplay-write',
    path,
    mode,
    options.owner ?? '',
    options.group ?? '',
    options.keepPrevious ? '1' : '',
    PREVIOUS_SUFFIX,
    // The byte count lets the script tell a lost connection (early end of stdin) from the end of the data.
    ...(size === undefined ? [] : [String(size)]),
  ];
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
