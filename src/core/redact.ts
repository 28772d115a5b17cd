/**
 * The one redactor every string leaving the process goes through: human output, JSON events, the run
 * journal, reports and error messages. It knows the secret values resolved from {env}/{file}
 * references and also masks the shapes secrets take even when their value was never registered
 * (password=... in a conninfo, user:pass@ in a URI, PGPASSWORD=..., .pgpass lines).
 */
export const MASK = '********';

const SHAPES: Array<[RegExp, string]> = [
  // conninfo key/value: password=secret or password='se cret'
  [/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)/gi, `$1${MASK}`],
  // URI credentials: postgresql://user:secret@host
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)(@)/gi, `$1${MASK}$3`],
  // environment assignments and JSON-ish keys
  [/(\bPGPASSWORD\s*[=:]\s*"?)([^\s"]+)/g, `$1${MASK}`],
  [/("(?:password|passphrase|secret|pass)"\s*:\s*")((?:[^"\\]|\\.)*)(")/gi, `$1${MASK}$3`],
  // pgBackRest cipher passes: repo1-cipher-pass=...
  [/(\b[a-z0-9-]*cipher-pass\s*=\s*)(\S+)/gi, `$1${MASK}`],
  // .pgpass lines, hostname:port:database:username:password (port a number or *), as cat or a diff
  // shows them. The first four fields hold no blanks, which keeps "file:3:7: message: detail" intact.
  [/^([ \t]*[+-]?(?:[^:\s\\]|\\.)+:(?:\d+|\*):(?:[^:\s\\]|\\.)+:(?:[^:\s\\]|\\.)+:)([^\r\n]+)$/gm, `$1${MASK}`],
];

/**
 * Every shape above holds an '=' or a ':' (a key's assignment, a URI's scheme and credentials, a .pgpass
 * line's fields): a string with neither has none of them to mask. Most strings of a run's events have
 * neither (step ids, names, statuses), and redact runs on each of them (~400 in a no-change standby run).
 */
function mayHoldShape(text: string): boolean {
  return text.includes('=') || text.includes(':');
}

/** A registered secret as redact masks it: a short one only whole (its pattern), a longer one anywhere. */
interface Masked {
  value: string;
  whole?: RegExp;
}

export class Redactor {
  private secrets = new Set<string>();
  /** The secrets longest first (so a secret that contains another is masked whole), made again after add. */
  private ordered?: Masked[];

  /** Registers a secret value; values shorter than 4 characters are still masked, but only whole. */
  add(secret: string | undefined | null): void {
    if (!secret) return;
    this.ordered = undefined;
    this.secrets.add(secret);
    // A secret may also appear in forms a tool prints: .pgpass-escaped, URI-encoded.
    const pgpassEscaped = secret.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
    if (pgpassEscaped !== secret) this.secrets.add(pgpassEscaped);
    const uriEncoded = encodeURIComponent(secret);
    if (uriEncoded !== secret) this.secrets.add(uriEncoded);
  }

  get size(): number {
    return this.secrets.size;
  }

  redact(text: string): string {
    let out = text;
    for (const { value, whole } of this.masked()) out = whole ? out.replace(whole, MASK) : out.split(value).join(MASK);
    if (mayHoldShape(out)) for (const [re, replacement] of SHAPES) out = out.replace(re, replacement);
    return out;
  }

  private masked(): Masked[] {
    this.ordered ??= [...this.secrets]
      .sort((a, b) => b.length - a.length)
      .map((value) => (value.length < 4 ? { value, whole: new RegExp(`(?<![\\w])${escapeRegExp(value)}(?![\\w])`, 'g') } : { value }));
    return this.ordered;
  }

  /**
   * Whether the text holds a registered secret value. Unlike redact, the shapes are not looked at: a
   * script line such as `k=db1:5432:replication:replicator: awk ...` has a .pgpass line's shape and no secret.
   */
  holdsSecret(text: string): boolean {
    for (const s of this.secrets) {
      if (s.length < 4 ? new RegExp(`(?<![\\w])${escapeRegExp(s)}(?![\\w])`).test(text) : text.includes(s)) return true;
    }
    return false;
  }

  /** Deep copy of a JSON-able value with every string redacted (keys are kept). */
  redactValue<T>(value: T): T {
    return this.walk(value) as T;
  }

  private walk(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.walk(v));
    if (value && typeof value === 'object') {
      if (value instanceof Date) return value;
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.walk(v);
      return out;
    }
    return value;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The process's redactor. The CLI hands it to the run, so everything printed outside the run's event
 * stream (error messages in main's report(), warnings, prompts) is masked with the run's secrets too.
 */
const processWide = new Redactor();

export function processRedactor(): Redactor {
  return processWide;
}
