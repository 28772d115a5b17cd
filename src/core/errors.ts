/**
 * The one error type pgplay raises for anything a user can cause. It carries a code that decides the
 * exit status, the place it happened (file:line:col for input, step and host at run time), what was
 * expected, and a hint. The CLI prints it without a stack trace unless PGPLAY_DEBUG=1.
 */
export type ErrorCode =
  | 'USAGE' // bad command line
  | 'YAML' // YAML syntax
  | 'SCHEMA' // JSON Schema violation
  | 'SEMANTIC' // valid shape, contradictory meaning (unknown host, duplicate step id, ...)
  | 'RENDER' // template or expression error
  | 'STEP_FAILED' // an action failed at run time
  | 'TRANSPORT' // connection, auth, host key
  | 'TIMEOUT'
  | 'GUARD' // refused by a safety guard or a contradicting fact
  | 'LOCK' // another run holds the cluster lock
  | 'INTERRUPTED';

export const EXIT = { OK: 0, FAILED: 1, INVALID: 2, REFUSED: 3, INTERRUPTED: 130 } as const;

const exitByCode: Record<ErrorCode, number> = {
  USAGE: EXIT.INVALID,
  YAML: EXIT.INVALID,
  SCHEMA: EXIT.INVALID,
  SEMANTIC: EXIT.INVALID,
  RENDER: EXIT.INVALID,
  STEP_FAILED: EXIT.FAILED,
  TRANSPORT: EXIT.FAILED,
  TIMEOUT: EXIT.FAILED,
  GUARD: EXIT.REFUSED,
  LOCK: EXIT.REFUSED,
  INTERRUPTED: EXIT.INTERRUPTED,
};

export interface SourcePosition {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

/** The command whose failure an error reports: what machines need to act on it without parsing the message. */
export interface FailedCommand {
  argv: string[];
  /** Its exit status. */
  rc?: number;
  /** The last lines it wrote to stderr (or stdout when stderr was empty). */
  stderrTail?: string[];
}

export interface ErrorDetails {
  code: ErrorCode;
  message: string;
  /** What the input should have been, e.g. "one of full, diff, incr". */
  expected?: string;
  hint?: string;
  position?: SourcePosition;
  step?: string;
  host?: string;
  command?: FailedCommand;
  /**
   * The transport could not connect at all (refused, timed out, no route): the host is down or cut off.
   * Set only by transports, at connect; an authentication or host-key failure is not unreachable.
   * A step with `unreachable: tolerate` records such a host instead of failing (engine/unreachable.ts).
   */
  unreachable?: boolean;
  cause?: unknown;
}

export class PgplayError extends Error {
  readonly code: ErrorCode;
  readonly expected?: string;
  readonly hint?: string;
  readonly position?: SourcePosition;
  readonly command?: FailedCommand;
  readonly unreachable: boolean;
  step?: string;
  host?: string;

  constructor(details: ErrorDetails) {
    super(details.message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'PgplayError';
    this.code = details.code;
    this.expected = details.expected;
    this.hint = details.hint;
    this.position = details.position;
    this.step = details.step;
    this.host = details.host;
    this.command = details.command;
    this.unreachable = details.unreachable === true;
  }

  get exitCode(): number {
    return exitByCode[this.code];
  }

  /** One line (plus optional hint line) as a user sees it: `file:3:7: message (expected ...)`. */
  format(): string {
    const where: string[] = [];
    if (this.position) where.push(`${this.position.file}:${this.position.line}:${this.position.col}`);
    if (this.step) where.push(`step ${this.step}`);
    if (this.host) where.push(`host ${this.host}`);
    let text = where.length ? `${where.join(', ')}: ${this.message}` : this.message;
    if (this.expected) text += ` (expected ${this.expected})`;
    if (this.hint) text += `\n  hint: ${this.hint}`;
    return text;
  }
}

/** Several input errors reported together (validation collects them all before failing). */
export class PgplayErrors extends Error {
  readonly errors: PgplayError[];
  constructor(errors: PgplayError[]) {
    super(errors.map((e) => e.format()).join('\n'));
    this.name = 'PgplayErrors';
    this.errors = errors;
  }
  get exitCode(): number {
    return Math.max(...this.errors.map((e) => e.exitCode));
  }
}

/**
 * An error as events, the journal and `--output json` carry it: every field a machine needs, not only
 * the message. Not redacted here: whoever writes it out passes it through the redactor.
 */
export interface ErrorPayload {
  code: ErrorCode | 'INTERNAL';
  message: string;
  /** The exit status this error gives pgplay. */
  exitCode: number;
  expected?: string;
  hint?: string;
  step?: string;
  host?: string;
  position?: SourcePosition;
  command?: FailedCommand;
  /** The host could not be connected to (see ErrorDetails.unreachable). */
  unreachable?: true;
}

export function errorPayload(e: PgplayError): ErrorPayload {
  const payload: ErrorPayload = { code: e.code, message: e.message, exitCode: e.exitCode };
  if (e.expected !== undefined) payload.expected = e.expected;
  if (e.hint !== undefined) payload.hint = e.hint;
  if (e.step !== undefined) payload.step = e.step;
  if (e.host !== undefined) payload.host = e.host;
  if (e.position) payload.position = e.position;
  if (e.command) payload.command = e.command;
  if (e.unreachable) payload.unreachable = true;
  return payload;
}

/** The last non-empty lines of a tool's output, for an error message and its FailedCommand. */
export function tailLines(text: string, n: number): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .slice(-n);
}

/** What an error says about a command that ran and failed: its argv, exit status and last output lines. */
export function failedCommand(r: { argv: string[]; exitCode: number; stderr: string; stdout?: string }, lines = 5): FailedCommand {
  return { argv: r.argv, rc: r.exitCode, stderrTail: tailLines(r.stderr || r.stdout || '', lines) };
}

export function isPgplayError(e: unknown): e is PgplayError {
  return e instanceof PgplayError;
}
