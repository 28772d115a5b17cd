import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { parseStat, STAT_FORMAT } from './file-commands.js';
import type { FileStat, Transport } from './types.js';

/**
 * Reads the state of many paths in one command: for each path what `stat` returns (lstat semantics)
 * and, for a small regular file, what `readFile` returns. Over SSH every stat or read is a session (an
 * sshd fork, a shell, an exec), so checking 20 idempotent steps costs 30 round trips; read ahead, it
 * costs one.
 *
 * The answers must be exactly what the transport's own calls would have returned, or nothing: a path
 * whose answer is in doubt (a race, an unreadable file, a file larger than the limit) is simply not
 * read ahead, and the real call is made.
 */
export interface ReadAheadAnswer {
  stat: FileStat;
  /** The file's bytes; null when readFile would find nothing (missing, dangling link); absent when not read ahead. */
  content?: Buffer | null;
  /** Where the path is on its machine, so that a change of known extent drops only what it can change. */
  where?: PathLocation;
}

/**
 * A path as its machine resolves it: `anchor` is the deepest ancestor directory that exists (symlinks
 * followed), named by machine (boot id), device and inode; `rest` the path's components below it, the
 * last being the path's own name (the others do not exist, so none of them is a link). Two paths are the
 * same place exactly when both agree. `self`: the path's own identity when it is a directory.
 */
export interface PathLocation {
  anchor: string;
  rest: string[];
  self?: string;
}

/** Larger regular files are stat'ed but not read ahead: the state check of most steps never reads them. */
export const READ_AHEAD_MAX_BYTES = 128 * 1024;

/**
 * Positional args: nonce max path... The first loop prints E/M per path and leaves only the paths that
 * exist in "$@"; one `stat` then covers them all, in order (the same format as the stat script, so the
 * same parser reads it). The second loop prints, per existing path, L and its link target, or C (its
 * content comes later), or -; it leaves the C paths in "$@", and one `head -v` prints them all, each
 * after a "==> path <==" line. Knowing every size from stat, the parser finds each file exactly where it
 * must start and end, and trusts no content at all if anything is out of place (a file that changed
 * size meanwhile). One process per kind of work, not one per file: on a busy host every fork counts.
 * Records end with a line holding the nonce and the exit status of what produced them. Everything goes
 * through base64 because command output comes back as text. Last come the paths' locations
 * (PathLocation), worked out first in a subshell while "$@" still holds every path: per path how many
 * levels below its deepest existing ancestor directory it is (shell builtins only), then one `stat -L`
 * of those directories (and of each path that is a directory itself).
 */
const READ_AHEAD_SCRIPT = `nonce=$1; max=$2; shift 2
where=$(
  boot=; read -r boot 2>/dev/null < /proc/sys/kernel/random/boot_id
  printf '%s\\n' "$boot"
  for p do
    shift
    case $p in
      /*)
        n=0; d=\${p%/*}; d=\${d:-/}
        while [ ! -d "$d" ]; do n=$((n + 1)); d=\${d%/*}; d=\${d:-/}; done
        printf '%s\\n' "$n"
        if [ -d "$p" ] && [ ! -L "$p" ]; then set -- "$@" "$d" "$p"; else set -- "$@" "$d" "$d"; fi ;;
      *) printf '%s\\n' -; set -- "$@" / / ;;
    esac
  done
  stat -L -c '%d:%i' -- "$@"
  printf '%s\\n' "$?"
)
{
for p do
  shift
  if [ -e "$p" ] || [ -L "$p" ]; then printf 'E\\n'; set -- "$@" "$p"; else printf 'M\\n'; fi
done
printf '%s\\n' "$nonce"
if [ $# -gt 0 ]; then stat -c '${STAT_FORMAT}' -- "$@"; fi
printf '%s %s\\n' "$nonce" "$?"
for p do
  shift
  if [ -L "$p" ]; then
    printf 'L\\n'; readlink -- "$p"; printf '\\n%s %s\\n' "$nonce" "$?"
  elif [ -f "$p" ] && [ -r "$p" ]; then
    printf 'C\\n'; set -- "$@" "$p"
  else
    printf '%s\\n' -
  fi
done
printf '%s\\n' "$nonce"
if [ $# -gt 0 ]; then head -v -c "$max" -- "$@"; fi
printf '\\n%s %s\\n' "$nonce" "$?"
printf '%s\\n%s\\n%s\\n' "$nonce" "$where" "$nonce"
} | base64`;

export function readAheadArgv(paths: string[], nonce: string, maxBytes = READ_AHEAD_MAX_BYTES): string[] {
  return ['sh', '-c', READ_AHEAD_SCRIPT, 'pgplay-read-ahead', nonce, String(maxBytes), ...paths];
}

export function newNonce(): string {
  return `pgplay-${randomBytes(12).toString('hex')}`;
}

/**
 * Parses the script's output into one answer per path it could vouch for. Throws when the output
 * does not have the expected shape (then nothing from it may be used).
 */
export function parseReadAhead(base64: string, paths: string[], nonce: string, maxBytes = READ_AHEAD_MAX_BYTES): Map<string, ReadAheadAnswer> {
  const out = new Map<string, ReadAheadAnswer>();
  const reader = new Reader(Buffer.from(base64, 'base64'));
  const existing: string[] = [];
  for (const path of paths) {
    const flag = reader.line();
    if (flag === 'E') existing.push(path);
    else if (flag === 'M') out.set(path, { stat: { exists: false }, content: null });
    else throw new Error(`read-ahead: unexpected existence flag ${JSON.stringify(flag)}`);
  }
  if (reader.line() !== nonce) throw new Error('read-ahead: existence list does not end where expected');
  const statLines: string[] = [];
  for (;;) {
    const line = reader.line();
    if (line.startsWith(`${nonce} `)) {
      // A path that vanished between the test and stat leaves the lines out of step: trust none.
      if (line !== `${nonce} 0` || statLines.length !== existing.length) {
        for (const path of existing) out.delete(path);
        return out;
      }
      break;
    }
    statLines.push(line);
  }
  const stats = statLines.map((line) => parseStat(line + '\n'));
  const readable: Array<{ path: string; stat: FileStat }> = [];
  existing.forEach((path, i) => {
    const kind = reader.line();
    const stat = stats[i]!;
    if (kind === '-') {
      // Neither a link nor a readable regular file: a directory reads as an error, so only stat is known.
      out.set(path, { stat });
    } else if (kind === 'L') {
      const { bytes, status } = reader.record(nonce);
      if (status !== 0 || stat.type !== 'symlink') return;
      // As the stat script: readlink's own final newline is not part of the target.
      const target = bytes.toString('utf8');
      out.set(path, { stat: { ...stat, linkTarget: target.endsWith('\n') ? target.slice(0, -1) : target } });
    } else if (kind === 'C') {
      // Until its content is found where it must be, a file is known by its stat alone.
      if (stat.type === 'file') out.set(path, { stat });
      readable.push({ path, stat });
    } else {
      throw new Error(`read-ahead: unexpected record kind ${JSON.stringify(kind)}`);
    }
  });
  if (reader.line() !== nonce) throw new Error('read-ahead: record list does not end where expected');
  const { bytes: block, status } = reader.record(nonce);
  const contents = status === 0 ? splitHeadOutput(block, readable, maxBytes) : undefined;
  contents?.forEach((content, i) => {
    const { path, stat } = readable[i]!;
    // Content is vouched for only when it is whole: the file is no larger than what head read.
    if (stat.type === 'file' && content.length === stat.size) out.set(path, { stat, content });
  });
  // Without the location section (output of an older script) every change is of unknown extent.
  if (reader.atEnd()) return out;
  if (reader.line() !== nonce) throw new Error('read-ahead: locations do not start where expected');
  const locationLines: string[] = [];
  for (let line = reader.line(); line !== nonce; line = reader.line()) locationLines.push(line);
  const locations = parseLocations(locationLines, paths);
  for (const [path, answer] of out) {
    const where = locations.get(path);
    if (where) answer.where = answer.stat.type === 'directory' ? where : { anchor: where.anchor, rest: where.rest };
  }
  return out;
}

/**
 * The location lines: the boot id, then per path how many levels below its anchor it is ('-' for a
 * relative path), then two identities per path (its anchor's; its own, or the anchor's again), then
 * stat's status. Locations are all or nothing: anything out of shape (a path that changed meanwhile,
 * a host without a boot id) leaves every path without one, and its changes are then of unknown extent.
 */
function parseLocations(lines: string[], paths: string[]): Map<string, PathLocation> {
  const out = new Map<string, PathLocation>();
  const [boot, ...rest] = lines;
  if (!boot || !/^[0-9a-f-]{16,}$/.test(boot) || rest.length !== 3 * paths.length + 1 || rest.at(-1) !== '0') return out;
  const ids = rest.slice(paths.length, 3 * paths.length);
  if (!ids.every((id) => /^\d+:\d+$/.test(id))) return out;
  paths.forEach((path, i) => {
    const levels = rest[i]!;
    if (!/^\d+$/.test(levels) || path !== posix.normalize(path) || !path.startsWith('/') || path === '/') return;
    const components = path.split('/').slice(1);
    const depth = Number(levels) + 1;
    if (depth > components.length) return;
    out.set(path, { anchor: `${boot}:${ids[2 * i]}`, self: `${boot}:${ids[2 * i + 1]}`, rest: components.slice(-depth) });
  });
  return out;
}

/**
 * `head -v -c max f1 f2 ...` prints "==> f1 <==\n" + content, then "\n==> f2 <==\n" + content, ...
 * Each content has the size stat saw (at most max); undefined when any header is not exactly where
 * those sizes put it, which is what a file that changed between stat and head looks like.
 */
function splitHeadOutput(block: Buffer, files: Array<{ path: string; stat: FileStat }>, maxBytes: number): Buffer[] | undefined {
  const contents: Buffer[] = [];
  let offset = 0;
  for (const [i, { path, stat }] of files.entries()) {
    const header = Buffer.from(`${i === 0 ? '' : '\n'}==> ${path} <==\n`);
    if (!block.subarray(offset, offset + header.length).equals(header)) return undefined;
    offset += header.length;
    const length = Math.min(stat.size ?? 0, maxBytes);
    if (offset + length > block.length) return undefined;
    contents.push(block.subarray(offset, offset + length));
    offset += length;
  }
  return offset === block.length ? contents : undefined;
}

class Reader {
  private offset = 0;
  constructor(private readonly data: Buffer) {}

  atEnd(): boolean {
    return this.offset >= this.data.length;
  }

  line(): string {
    const end = this.data.indexOf(0x0a, this.offset);
    if (end === -1) throw new Error('read-ahead: output ends early');
    const text = this.data.subarray(this.offset, end).toString('utf8');
    this.offset = end + 1;
    return text;
  }

  /** Bytes up to "\n<nonce> <status>\n". */
  record(nonce: string): { bytes: Buffer; status: number } {
    const marker = Buffer.from(`\n${nonce} `);
    const at = this.data.indexOf(marker, this.offset);
    if (at === -1) throw new Error('read-ahead: record does not end');
    const bytes = this.data.subarray(this.offset, at);
    this.offset = at + 1;
    const trailer = this.line();
    return { bytes, status: Number(trailer.slice(nonce.length + 1)) };
  }
}

/** Runs the read-ahead on a host as one user; resolves an empty map when the command itself fails. */
export async function readAheadPaths(
  transport: Transport,
  paths: string[],
  options: { become?: string; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<Map<string, ReadAheadAnswer>> {
  if (paths.length === 0) return new Map();
  const nonce = newNonce();
  const r = await transport.exec(readAheadArgv(paths, nonce), { ...options, env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0 || r.timedOut) return new Map();
  return parseReadAhead(r.stdout, paths, nonce);
}
