import { PgplayError } from '../core/errors.js';
import { becomeArgv, type BecomeMethod } from './become.js';

/**
 * The one place where an argv becomes a remote shell command line. sshd hands the command to the
 * login shell of the connecting user, so every value is single-quoted (POSIX sh, bash, dash, zsh
 * all read '...' literally); nothing the playbook supplies is ever interpreted by that shell.
 */
export function shQuote(value: string): string {
  assertNoNul(value, 'argument');
  // Inside single quotes only the quote itself needs care: close, add an escaped quote, reopen.
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface RemoteCommandOptions {
  cwd?: string;
  env?: Record<string, string>;
  become?: string;
  /** The user the SSH connection logs in as; decides runuser (root) or sudo -n. */
  currentUser: string;
  becomeMethod?: BecomeMethod;
  /**
   * Makes the remote shell announce its pid on stderr as `pgplay-pid:<tag>:<pid>` before anything
   * runs. sshd makes that shell a process-group leader, so the transport can stop the whole command
   * later (timeouts, Ctrl-C) with `kill -- -<pid>`: sshd refuses signal requests for root logins.
   */
  pidTag?: string;
}

/** The stderr line announced with `pidTag`, for the transport to find and strip. */
export function pidAnnouncement(tag: string): RegExp {
  return new RegExp(`pgplay-pid:${tag.replace(/[^\w-]/g, '')}:(\\d+)\n`);
}

/**
 * Builds `cd -- 'dir' && exec 'env' '--' ... 'argv0' 'argv1'`.
 *
 * - `exec` so the remote process is the session's direct child: a signal sent over the channel
 *   (timeouts) reaches it.
 * - The command is started through env(1), so argv[0] is always looked up as a program on PATH
 *   exactly as a local spawn would, never as a shell builtin, keyword, alias or function, and a
 *   leading dash cannot be read as an option of `exec`.
 * - The environment is applied after become (sudo resets the environment), and cwd before it, as a
 *   local spawn with cwd + runuser does.
 */
export function remoteCommand(argv: string[], options: RemoteCommandOptions): string {
  if (argv.length === 0) throw new PgplayError({ code: 'STEP_FAILED', message: 'empty command', expected: 'an argv with at least a program name' });
  let inner = argv;
  if (argv[0]!.includes('=')) {
    // env(1) would take "a=b" as an assignment; let sh run it by name instead (no builtin has "=").
    inner = ['sh', '-c', '"$0" "$@"', ...argv];
  }
  const env = Object.entries(options.env ?? {});
  if (env.length > 0 || !options.become || options.become === options.currentUser) {
    inner = ['env', '--', ...env.map(([k, v]) => envAssignment(k, v)), ...inner];
  }
  const full = becomeArgv(inner, options.become, options.currentUser, options.becomeMethod ?? 'auto');
  let command = `exec ${full.map(shQuote).join(' ')}`;
  // Another user may not enter the login's home (root's is 0700): tools then warn "could not change
  // directory" into every error message. Unless asked for a directory, such a command runs in /.
  const cwd = options.cwd ?? (options.become && options.become !== options.currentUser ? '/' : undefined);
  if (cwd !== undefined) command = `cd -- ${shQuote(cwd)} && ${command}`;
  if (options.pidTag !== undefined) {
    if (!/^[\w-]+$/.test(options.pidTag)) throw new Error(`pidTag must be [A-Za-z0-9_-]: ${options.pidTag}`);
    command = `printf 'pgplay-pid:%s:%s\\n' '${options.pidTag}' "$$" >&2; ${command}`;
  }
  return command;
}

/** A printable form of an argv for messages (not for execution): quotes only what needs it. */
export function displayArgv(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shQuote(a.replace(/\0/g, '\\0')))).join(' ');
}

function envAssignment(name: string, value: string): string {
  if (name === '' || name.includes('=') || name.includes('\0')) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `invalid environment variable name ${JSON.stringify(name)}`,
      expected: 'a non-empty name without "=" or NUL',
    });
  }
  assertNoNul(value, `value of environment variable ${name}`);
  return `${name}=${value}`;
}

function assertNoNul(value: string, what: string): void {
  if (value.includes('\0')) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `${what} contains a NUL byte, which no command line can carry`,
      expected: 'text without NUL bytes',
    });
  }
}
