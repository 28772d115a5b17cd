import { statSync, type Stats } from 'node:fs';

/*
 * Small checks of the file system that pgplay's caches and locks share: one definition of "a directory
 * is there" and of "this file is the user's alone", so that each cache trusts by the same rule.
 */

/** Whether `path` is a directory (following links); false when it is not there or cannot be looked at. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Others may not write (a cache of code: what it holds is no secret, but it runs). */
export const NOT_WRITABLE_BY_OTHERS = 0o022;
/** Others may neither read nor write (a cache of the user's data). */
export const PRIVATE = 0o077;

/** Whether `st` belongs to the user running pgplay and grants no one else the `denied` permission bits. */
export function ownedAlone(st: Stats, denied: number): boolean {
  return st.uid === process.getuid?.() && (st.mode & denied) === 0;
}
