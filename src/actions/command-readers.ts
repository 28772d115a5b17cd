/**
 * Which `command` steps only read, so that `check_mode: false` may run them for real under plan: an
 * argv (never a shell string) whose program is a known reader from the system's directories, with no
 * environment of its own (LD_PRELOAD and friends could make any program do anything). Everything else
 * is a possible write, which plan must never make.
 */
import { isTemplated } from '../schema/templated.js';
import type { CommandInput } from './command-input.js';

/**
 * Programs none of whose arguments can make them write, so templated arguments are fine. du (sizes of
 * trees; its only file options, --files0-from and --exclude-from, read) and stat -f (free space) are what
 * restore.yml's room guard reads under plan.
 */
const READERS = new Set(['cat', 'grep', 'head', 'tail', 'wc', 'stat', 'du', 'ls', 'test', 'id', 'uname', 'sha256sum', 'pg_controldata', 'pg_isready']);

/** `date` prints the clock with a +FORMAT, -u or -I; `date -s` sets it. Its arguments must be literal. */
function readsClock(args: string[]): boolean {
  return args.every((a) => !isTemplated(a) && (/^\+/.test(a) || /^(-u|--utc|--universal|-R|--rfc-email|-I\w*|--iso-8601(=\w+)?)$/.test(a)));
}

/** The program's name when argv[0] names it plainly or from a system directory (not a templated or private path). */
function programName(argv0: string): string | undefined {
  if (isTemplated(argv0)) return undefined;
  const m = /^(?:\/usr\/bin\/|\/bin\/|\/usr\/lib\/postgresql\/\d+\/bin\/)?([a-z0-9_]+)$/.exec(argv0);
  return m?.[1];
}

export function commandReadsOnly(input: CommandInput): boolean {
  if (!Array.isArray(input.argv) || input.argv.length === 0 || input.shell !== undefined || input.env !== undefined) return false;
  const [argv0, ...args] = input.argv;
  const program = programName(argv0!);
  if (program === undefined) return false;
  if (program === 'date') return readsClock(args);
  return READERS.has(program);
}
