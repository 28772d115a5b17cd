import { posix } from 'node:path';
import { failedCommand, PgplayError } from '../core/errors.js';
import { evaluateCondition } from '../expr/index.js';
import type { ExecOptions, ExecResult } from '../transports/types.js';
import type { CommandInput } from './command-input.js';
import { commandReadsOnly } from './command-readers.js';
import { commandLine, word } from './shell-export.js';
import type { Action, ActionContext, Outcome } from './types.js';

export type { CommandInput };

/** Lines of stderr quoted in a failure message: enough to see the cause, not a wall of output. */
const STDERR_TAIL_LINES = 5;

export const commandAction: Action<CommandInput> = {
  name: 'command',
  // What a command changes pgplay cannot know; like before, facts are not read again after it (actions read fresh state themselves).
  changes: [],
  summary:
    'Runs a command (an argv list, no shell; or a `shell:` string run by /bin/sh -c) as the become user. ' +
    'creates / removes / unless guards make it idempotent; changed_when and failed_when judge the result.',
  schema: {
    type: 'object',
    additionalProperties: false,
    oneOf: [{ required: ['argv'] }, { required: ['shell'] }],
    properties: {
      argv: {
        type: 'array',
        items: { type: 'string' },
        minItems: 1,
        description: 'The command and its arguments, passed as is: no shell, no word splitting, no globbing.',
      },
      shell: {
        type: 'string',
        minLength: 1,
        description: 'A shell script run with /bin/sh -c, for pipes and redirections. Prefer argv when you do not need them.',
      },
      chdir: { type: 'string', minLength: 1, description: 'Working directory of the command (and base of relative creates/removes).' },
      env: {
        type: 'object',
        additionalProperties: { type: 'string' },
        description: 'Environment variables added to the command environment. Values never appear in messages.',
      },
      stdin: { type: 'string', description: 'Text written to the command standard input.' },
      creates: { type: 'string', minLength: 1, description: 'Skip the command when this path exists.' },
      removes: { type: 'string', minLength: 1, description: 'Skip the command when this path does not exist.' },
      unless: {
        description: 'A probe command (argv list or shell string); the command is skipped when the probe exits 0. It also runs under --check.',
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', items: { type: 'string' }, minItems: 1 },
        ],
      },
      changed_when: {
        type: ['string', 'boolean'],
        description:
          'Expression over rc, stdout, stderr, stdout_lines (also as result.*) deciding whether the run changed something; default true. Use false for read-only commands.',
      },
      failed_when: {
        type: ['string', 'boolean'],
        description: 'Expression over rc, stdout, stderr, stdout_lines deciding failure; when set it alone decides (expect_rc is then ignored).',
      },
      expect_rc: {
        type: 'array',
        items: { type: 'integer', minimum: 0, maximum: 255 },
        minItems: 1,
        description: 'Exit codes that count as success (default [0]).',
      },
    },
  },

  readOnly: commandReadsOnly,

  async check(ctx, input) {
    const argv = commandArgv(input);
    const skip = await guardReason(ctx, input);
    // A satisfied guard means the desired state already holds: ok, not skipped (as Ansible reports it).
    if (skip) return { changed: false, msg: skip };
    return { changed: true, msg: `would run: ${formatArgv(argv)}` };
  },

  // The command with its guards as shell tests, so that the script skips it as pgplay would.
  async exportShell(ctx, input) {
    if (input.stdin !== undefined) throw new PgplayError({ code: 'USAGE', message: 'a command with stdin is not exported' });
    const env = Object.entries(input.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const line = commandLine([...(env.length ? ['env', ...env] : []), ...commandArgv(input)], ctx.become);
    const run = input.chdir !== undefined ? `(cd ${word(input.chdir)} && ${line})` : line;
    const guards: string[] = [];
    if (input.creates !== undefined) guards.push(`[ ! -e ${word(relativeTo(input.chdir, input.creates))} ]`);
    if (input.removes !== undefined) guards.push(`[ -e ${word(relativeTo(input.chdir, input.removes))} ]`);
    if (input.unless !== undefined) {
      const unless = typeof input.unless === 'string' ? ['/bin/sh', '-c', input.unless] : input.unless;
      guards.push(`! ${commandLine(unless, ctx.become)} >/dev/null 2>&1`);
    }
    const commands = guards.length ? [`if ${guards.join(' && ')}; then`, `  ${run}`, 'fi'] : [run];
    return { commands };
  },

  async apply(ctx, input) {
    const argv = commandArgv(input);
    const r = await ctx.transport.exec(argv, execOptions(ctx, input, { timeoutMs: ctx.timeoutMs }));
    if (r.timedOut) {
      throw new PgplayError({
        code: 'TIMEOUT',
        message: `${argv[0]} timed out after ${formatMs(ctx.timeoutMs ?? 0)} and was killed`,
      });
    }
    const stdoutLines = r.stdout === '' ? [] : r.stdout.split('\n');
    const data = { rc: r.exitCode, stdout: r.stdout, stderr: r.stderr, stdout_lines: stdoutLines, argv };
    const holds = (condition: Parameters<typeof evaluateCondition>[0]) =>
      ctx.withFacts(() => evaluateCondition(condition, ctx.scope({ rc: r.exitCode, stdout: r.stdout, stderr: r.stderr, stdout_lines: stdoutLines, result: data })));

    if (input.failed_when !== undefined) {
      if (await holds(input.failed_when)) {
        throw failure(`failed_when ${describeCondition(input.failed_when)} is true (rc ${r.exitCode})`, r);
      }
    } else {
      const accepted = input.expect_rc ?? [0];
      if (!accepted.includes(r.exitCode)) {
        const expected = accepted.length === 1 ? `rc ${accepted[0]}` : `rc in ${accepted.join(', ')}`;
        throw failure(`${argv[0]} exited with rc ${r.exitCode}`, r, expected);
      }
    }
    const changed = input.changed_when === undefined ? true : await holds(input.changed_when);
    return { changed, msg: `rc ${r.exitCode}`, data } satisfies Outcome;
  },
};

export default commandAction;

/** The argv that runs: as given, or the shell string under /bin/sh -c. */
export function commandArgv(input: CommandInput): string[] {
  if (input.argv && input.shell !== undefined) {
    throw new PgplayError({ code: 'SEMANTIC', message: 'command takes argv or shell, not both', expected: 'exactly one of argv, shell' });
  }
  if (input.argv) return input.argv;
  if (input.shell !== undefined) return ['/bin/sh', '-c', input.shell];
  throw new PgplayError({ code: 'SEMANTIC', message: 'command needs argv or shell', expected: 'exactly one of argv, shell' });
}

/** Why the command need not run, or undefined when it must. Reads only: safe under --check. */
async function guardReason(ctx: ActionContext, input: CommandInput): Promise<string | undefined> {
  if (input.creates !== undefined) {
    const path = relativeTo(input.chdir, input.creates);
    if ((await ctx.transport.stat(path, { become: ctx.become })).exists) return `${path} exists`;
  }
  if (input.removes !== undefined) {
    const path = relativeTo(input.chdir, input.removes);
    if (!(await ctx.transport.stat(path, { become: ctx.become })).exists) return `${path} does not exist`;
  }
  if (input.unless !== undefined) {
    const probe = typeof input.unless === 'string' ? ['/bin/sh', '-c', input.unless] : input.unless;
    const r = await ctx.transport.exec(probe, execOptions(ctx, { ...input, stdin: undefined }, { timeoutMs: ctx.timeoutMs }));
    if (r.timedOut) throw new PgplayError({ code: 'TIMEOUT', message: `unless probe timed out: ${probe[0]}` });
    if (r.exitCode === 0) return `unless probe succeeded: ${formatArgv(probe)}`;
  }
  return undefined;
}

function execOptions(ctx: ActionContext, input: CommandInput, extra: Partial<ExecOptions>): ExecOptions {
  return {
    cwd: input.chdir,
    env: input.env,
    stdin: input.stdin,
    become: ctx.become,
    signal: ctx.signal,
    ...extra,
  };
}

function relativeTo(dir: string | undefined, path: string): string {
  return dir && !posix.isAbsolute(path) ? posix.join(dir, path) : path;
}

function failure(what: string, r: ExecResult, expected?: string): PgplayError {
  const command = { ...failedCommand({ ...r, stdout: '' }, STDERR_TAIL_LINES) };
  const tail = command.stderrTail!;
  return new PgplayError({
    code: 'STEP_FAILED',
    message: tail.length ? `${what}: ${tail.join('\n')}` : what,
    expected,
    command,
  });
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${+(ms / 1000).toFixed(1)}s`;
}

function describeCondition(condition: string | boolean): string {
  return typeof condition === 'boolean' ? String(condition) : `"${condition}"`;
}

/** Shell-style quoting, only for showing a command to a human; execution never goes through it. */
export function formatArgv(argv: string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
