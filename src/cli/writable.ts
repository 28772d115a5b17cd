/**
 * Output files named on the command line (--report, and any later one like it) are checked before the
 * run: a path that cannot be written is bad input (exit 2) found before the first step, not after an
 * hour-long drill. Nothing is created here; the file is written after the run.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';

async function statOrUndefined(path: string) {
  try {
    return await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is a file; the walk up below names it.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
}

/** Throws a USAGE error unless `file` can be written (it exists as a writable file, or its nearest existing ancestor is a writable directory). */
export async function assertWritableOutput(file: string, flag: string): Promise<void> {
  const fail = (why: string) => new PgplayError({ code: 'USAGE', message: `cannot write ${flag} ${file}: ${why}`, expected: `${flag} naming a file in a writable directory` });
  const path = resolve(file);
  try {
    const st = await statOrUndefined(path);
    if (st) {
      if (!st.isFile()) throw fail('it exists and is not a regular file');
      await access(path, constants.W_OK).catch(() => {
        throw fail('permission denied');
      });
      return;
    }
    // The drill report creates missing directories: the nearest one that exists must take new entries.
    let dir = dirname(path);
    for (;;) {
      const d = await statOrUndefined(dir);
      if (d) {
        if (!d.isDirectory()) throw fail(`${dir} is not a directory`);
        await access(dir, constants.W_OK | constants.X_OK).catch(() => {
          throw fail(`${dir} is not writable`);
        });
        return;
      }
      const up = dirname(dir);
      if (up === dir) throw fail('no existing parent directory');
      dir = up;
    }
  } catch (e) {
    if (e instanceof PgplayError) throw e;
    throw fail((e as NodeJS.ErrnoException).code ?? String(e));
  }
}
