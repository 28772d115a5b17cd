import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';

/** Everything observable about a directory tree: entries, types, modes, owners, sizes, mtimes, contents. */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(path: string): Promise<void> {
    const st = await lstat(path);
    const rel = relative(root, path) || '.';
    let what = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid} mtime=${st.mtimeMs}`;
    if (st.isSymbolicLink()) what = `link -> ${await readlink(path)} ${what}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${what}`;
      for (const name of (await readdir(path)).sort()) await walk(join(path, name));
      return;
    } else what = `file size=${st.size} sha256=${createHash('sha256').update(await readFile(path)).digest('hex')} ${what}`;
    out[rel] = what;
  }
  await walk(root);
  return out;
}
