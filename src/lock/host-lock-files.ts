/**
 * The three file operations of a host lock (take, take over, release), each answered the way the
 * lock's logic (host-lock.ts) reads it. Through any transport they are one /bin/sh command each; on a
 * local transport, whose commands run as this very process's user on this machine, they are node's fs
 * calls on the same paths, in the same order, with the same modes: no process at all, where the shell
 * and its mkdir, cat, ln and rm cost a run ~70 ms at its start and ~25 ms at its end.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import type { Transport } from '../transports/types.js';
import { isDirectory } from '../core/fs-checks.js';

/** `acquired`; `absent` (nothing there yet to lock); `held` with the holder's content ('' when gone meanwhile); or an error. */
export type AcquireAnswer = { answer: 'acquired' } | { answer: 'absent' } | { answer: 'held'; holder: string } | { answer: 'error'; message: string };

export interface HostLockFiles {
  /** Creates `path` (in `dir`, made if missing, 0700) holding `content` (0600) unless it exists; `base`, when given, must already exist. */
  acquire(dir: string, path: string, base: string, content: string): Promise<AcquireAnswer>;
  /** Moves a stale lock aside and removes it if it is still the one judged (`runId`, '' for an unreadable one): `taken`; else puts it back: `changed`. */
  takeOver(path: string, runId: string): Promise<'taken' | 'changed'>;
  /** Removes the lock while it is ours; throws only when the operation could not be carried out. */
  release(path: string, runId: string): Promise<void>;
}

// $1 lock directory, $2 lock file, $3 a directory that must exist ('' for none), stdin the content.
// Prints "acquired", "absent" (nothing is there yet to lock), or "held" and the holder's content.
// mkdir only when the directory is missing: after a host's first run it is there, and it is a process.
const ACQUIRE =
  'if [ -n "$3" ] && [ ! -d "$3" ]; then echo absent; exit 0; fi; umask 077; [ -d "$1" ] || mkdir -p -- "$1" || exit 3; tmp="$2.$$.tmp"; cat > "$tmp" || exit 3; ' +
  'if ln -- "$tmp" "$2" 2>/dev/null; then rm -f -- "$tmp"; echo acquired; else rm -f -- "$tmp"; echo held; cat -- "$2" 2>/dev/null; fi';
// $1 lock file, $2 the run id judged stale ('' for an unreadable file). Moves it aside; a lock that
// changed hands meanwhile is put back. Prints "taken" or "changed".
const TAKE_OVER =
  'aside="$1.stale-$$"; mv -- "$1" "$aside" 2>/dev/null || { echo taken; exit 0; }; ' +
  'if [ -n "$2" ]; then grep -qF "\\"runId\\":\\"$2\\"" "$aside"; else ! grep -q "\\"runId\\"" "$aside"; fi; ' +
  'if [ $? = 0 ]; then rm -f -- "$aside"; echo taken; else ln -- "$aside" "$1" 2>/dev/null; rm -f -- "$aside"; echo changed; fi';
// $1 lock file, $2 our run id: removed only while it is ours.
const RELEASE = 'grep -qF "\\"runId\\":\\"$2\\"" "$1" 2>/dev/null && rm -f -- "$1"; exit 0';

/** The lock's files as the transport reaches them: in this process for a local one, by shell commands otherwise. */
export function hostLockFiles(transport: Transport): HostLockFiles {
  return transport.kind === 'local' ? inProcessLockFiles : lockFilesByCommands(transport);
}

export function lockFilesByCommands(transport: Transport): HostLockFiles {
  return {
    async acquire(dir, path, base, content) {
      const r = await transport.exec(['/bin/sh', '-c', ACQUIRE, 'pgplay-lock', dir, path, base], { stdin: content, timeoutMs: 30_000 });
      if (r.exitCode !== 0) return { answer: 'error', message: r.stderr.trim() || `rc ${r.exitCode}` };
      const [first, ...rest] = r.stdout.split('\n');
      if (first?.trim() === 'acquired') return { answer: 'acquired' };
      if (first?.trim() === 'absent') return { answer: 'absent' };
      return { answer: 'held', holder: rest.join('\n').trim() };
    },
    async takeOver(path, runId) {
      const t = await transport.exec(['/bin/sh', '-c', TAKE_OVER, 'pgplay-lock-takeover', path, runId], { timeoutMs: 30_000 });
      return t.stdout.trim() === 'taken' ? 'taken' : 'changed';
    },
    async release(path, runId) {
      // RELEASE always exits 0: anything else is a connection that did not carry the command.
      const r = await transport.exec(['/bin/sh', '-c', RELEASE, 'pgplay-unlock', path, runId], { timeoutMs: 30_000 });
      if (r.exitCode !== 0 || r.timedOut) throw new Error(r.stderr.trim() || (r.timedOut ? 'timed out' : `rc ${r.exitCode}`));
    },
  };
}

/** The scripts above, step for step, as this process (the local transport's connection user). */
export const inProcessLockFiles: HostLockFiles = {
  async acquire(dir, path, base, content) {
    if (base !== '' && !isDirectory(base)) return { answer: 'absent' };
    const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeNew(tmp, content);
    } catch (e) {
      return { answer: 'error', message: (e as Error).message };
    }
    try {
      linkSync(tmp, path);
      return { answer: 'acquired' };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return { answer: 'error', message: (e as Error).message };
      return { answer: 'held', holder: readOrEmpty(path).trim() };
    } finally {
      removeIfThere(tmp);
    }
  },
  async takeOver(path, runId) {
    const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      renameSync(path, aside);
    } catch {
      return 'taken'; // gone already: the next attempt finds the name free
    }
    const text = readOrEmpty(aside);
    const same = runId !== '' ? text.includes(`"runId":"${runId}"`) : !text.includes('"runId"');
    if (!same) {
      try {
        linkSync(aside, path);
      } catch {
        // someone else took the name meanwhile
      }
    }
    removeIfThere(aside);
    return same ? 'taken' : 'changed';
  },
  async release(path, runId) {
    if (readOrEmpty(path).includes(`"runId":"${runId}"`)) removeIfThere(path);
  },
};

/** A new file, private (as the script's umask 077 makes it). */
function writeNew(path: string, content: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function removeIfThere(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
