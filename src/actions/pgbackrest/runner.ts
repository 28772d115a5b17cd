/**
 * Runs pgBackRest on a host as the PostgreSQL OS user, always with an argv (never a shell line with
 * values in it) and with the console log off and the stderr log at a chosen level: stdout then holds
 * only the command's report (JSON for info, text for verify) and stderr the log that pgplay reads.
 *
 * The repository cipher passphrase never appears in an argv: it travels on stdin to a fixed sh
 * wrapper that exports it as PGBACKREST_REPO1_CIPHER_PASS and execs pgBackRest, so it is not visible
 * in any process list, locally or over SSH.
 */
import { PgplayError } from '../../core/errors.js';
import { parseErrorReport, parseLog, type LogLine } from '../../postgres/pgbackrest-info.js';
import type { ActionContext } from '../types.js';
import { formatArgv } from '../command.js';
import { pgbackrestFailure } from './errors.js';

export const PGBACKREST_BIN = 'pgbackrest';

const CIPHER_WRAPPER =
  'IFS= read -r PGBACKREST_REPO1_CIPHER_PASS || { echo "pgplay: no cipher passphrase on stdin" >&2; exit 125; }; ' +
  'export PGBACKREST_REPO1_CIPHER_PASS; exec "$@"';

export interface RunOptions {
  /** stderr log level: info (default) carries labels and progress, detail adds verify's WAL ranges. */
  logLevel?: 'warn' | 'info' | 'detail';
  /** Without --stanza (stop/start for every stanza, help). */
  noStanza?: boolean;
  /** Exit codes that are results, not failures. */
  acceptExit?: number[];
  /** Defaults to the step's timeout. */
  timeoutMs?: number;
  /** The command's own parameters, after it (repo-ls <path>). */
  parameters?: string[];
}

export interface RunResult {
  /** What ran, for messages and registered data (never contains a secret). */
  argv: string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  log: LogLine[];
}

export class PgbackrestRunner {
  private cipherPass: string | undefined | null = null;

  constructor(
    private readonly ctx: ActionContext,
    readonly stanza: string,
    readonly config: string | undefined,
  ) {}

  /** The pgbackrest argv for a command: options first, the command last. */
  argv(command: string, args: string[], options: RunOptions = {}): string[] {
    return [
      PGBACKREST_BIN,
      ...(this.config ? [`--config=${this.config}`] : []),
      ...(options.noStanza ? [] : [`--stanza=${this.stanza}`]),
      '--log-level-console=off',
      `--log-level-stderr=${options.logLevel ?? 'info'}`,
      ...args,
      command,
      ...(options.parameters ?? []),
    ];
  }

  async run(command: string, args: string[] = [], options: RunOptions = {}): Promise<RunResult> {
    const argv = this.argv(command, args, options);
    const pass = await this.passphrase();
    const exec = pass === undefined ? argv : ['/bin/sh', '-c', CIPHER_WRAPPER, 'pgplay-pgbackrest', ...argv];
    const timeoutMs = options.timeoutMs ?? this.ctx.timeoutMs;
    const r = await this.ctx.transport.exec(exec, {
      become: this.ctx.host.postgres.osUser,
      // The OS user may not be allowed into the caller's working directory.
      cwd: '/',
      signal: this.ctx.signal,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(pass !== undefined ? { stdin: `${pass}\n` } : {}),
    });
    if (r.timedOut) {
      throw new PgplayError({ code: 'TIMEOUT', message: `pgbackrest ${command} was killed after the step timeout (${formatArgv(argv)})` });
    }
    const log = parseLog(r.stderr);
    for (const l of log) if (l.level === 'WARN' || l.level === 'ERROR') this.ctx.log(`pgbackrest ${command}: ${l.level}: ${l.text.replace(/\n/g, ' ')}`);
    const result: RunResult = { argv, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, log };
    if (r.exitCode !== 0 && !(options.acceptExit ?? []).includes(r.exitCode)) {
      if (r.exitCode === 127 && /not found/i.test(r.stderr)) {
        throw new PgplayError({
          code: 'STEP_FAILED',
          message: `pgbackrest is not installed on ${this.ctx.host.name} (or not on the PATH of ${this.ctx.host.postgres.osUser})`,
          hint: 'install it (Debian: apt-get install pgbackrest)',
        });
      }
      throw pgbackrestFailure(r.exitCode, parseErrorReport(log), stderrTail(r.stderr), { command, stanza: this.stanza, config: this.config, argv, rc: r.exitCode });
    }
    return result;
  }

  /**
   * The effective value of an option as pgBackRest resolves it (command line, environment, config
   * file and its includes), from `pgbackrest help <command> <option>`, which changes nothing.
   */
  async effectiveOption(command: string, option: string, options: { noStanza?: boolean } = {}): Promise<string | undefined> {
    const argv = [
      PGBACKREST_BIN,
      ...(this.config ? [`--config=${this.config}`] : []),
      ...(options.noStanza ? [] : [`--stanza=${this.stanza}`]),
      '--log-level-console=off',
      '--log-level-stderr=warn',
      'help',
      command,
      option,
    ];
    const res = await this.ctx.transport.exec(argv, { become: this.ctx.host.postgres.osUser, cwd: '/', signal: this.ctx.signal });
    if (res.exitCode !== 0) {
      throw pgbackrestFailure(res.exitCode, parseErrorReport(parseLog(res.stderr)), stderrTail(res.stderr), {
        command: `help ${command} ${option}`,
        stanza: this.stanza,
        config: this.config,
        argv,
        rc: res.exitCode,
      });
    }
    const current = /^current: (.+)$/m.exec(res.stdout);
    if (current) return current[1]!.trim();
    const def = /^default: (.+)$/m.exec(res.stdout);
    return def ? def[1]!.trim() : undefined;
  }

  private async passphrase(): Promise<string | undefined> {
    if (this.cipherPass !== null) return this.cipherPass;
    const ref = this.ctx.inventory.backup?.cipherPass;
    const pass = ref === undefined ? undefined : await this.ctx.secret(ref);
    if (pass !== undefined && /[\r\n]/.test(pass)) {
      throw new PgplayError({ code: 'SEMANTIC', message: 'backup.cipherPass must be a single line', expected: 'a passphrase without line breaks' });
    }
    this.cipherPass = pass;
    return pass;
  }
}

/** The last lines of stderr, for a failure pgBackRest did not report as ERROR: [NNN]. */
function stderrTail(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^INFO: .* command (begin|end)/.test(l))
    .slice(-3)
    .join(' ');
}
