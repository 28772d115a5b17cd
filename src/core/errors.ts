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

export interface ErrorDetails {
  code: ErrorCode;
  message: string;
  /** What the input should have been, e.g. "one of full, diff, incr". */
  expected?: string;
  hint?: string;
  position?: SourcePosition;
  step?: string;
  host?: string;
  cause?: unknown;
}

export class PgplayError extends Error {
  readonly code: ErrorCode;
  readonly expected?: string;
  readonly hint?: string;
  readonly position?: SourcePosition;
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

export function isPgplayError(e: unknown): e is PgplayError {
  return e instanceof PgplayError;
}
