/**
 * Barman reports a failure as a message (its JSON output's _ERROR list, or "ERROR: ..." lines on
 * stderr) and exit status 1 (2 for a critical --nagios check). The ones a DBA meets during DR work get a
 * sentence that says what it means and what to do, like the pgBackRest action's errors.
 */
import { PgplayError } from '../core/errors.js';

interface Explanation {
  what: string;
  hint: string;
}

interface Known {
  test: RegExp;
  explain: (ctx: FailureContext) => Explanation;
}

export interface FailureContext {
  command: string;
  server: string;
  /** The Barman server's config file pgplay renders. */
  configFile: string;
  repoHost: string;
}

const KNOWN: Known[] = [
  {
    test: /Impossible to start the backup/i,
    explain: (c) => ({
      what: `a check of server ${c.server} fails`,
      hint: `the barman action's check command (or \`barman check ${c.server}\` as barman on ${c.repoHost}) names the failed checks; nightly-backup.yml runs it before the backup`,
    }),
  },
  {
    test: /Unknown server/i,
    explain: (c) => ({
      what: `Barman has no server ${c.server} on ${c.repoHost}`,
      hint: `run nightly-backup.yml: it writes ${c.configFile}; or set backup.barman.server to the server's name in /etc/barman.d`,
    }),
  },
  {
    test: /Unknown backup|No backup available|no backups? (?:found|available)/i,
    explain: (c) => ({ what: `server ${c.server} has no such backup`, hint: `take one (nightly-backup.yml) or name one of \`barman list-backups ${c.server}\`` }),
  },
  {
    test: /Another .*(?:process|action) .*(?:running|in progress)|lock (?:file|acquire)/i,
    explain: (c) => ({ what: `another barman process holds the lock of server ${c.server}`, hint: 'a backup, recover, cron or receive-wal is running: wait for it and run again' }),
  },
  {
    test: /Permission denied \(publickey|Host key verification failed|ssh: connect to host/i,
    explain: (c) => ({
      what: 'an SSH connection between the Barman host and a database host was refused',
      hint: `the trust is the barman user's key in the PostgreSQL OS user's authorized_keys (rsync, recover) and the PostgreSQL OS user's key in barman's (barman-wal-archive, barman-wal-restore); nightly-backup.yml sets it up on ${c.repoHost} and the database hosts`,
    }),
  },
  {
    test: /password authentication failed|no password supplied|could not connect|connection (?:refused|to server .* failed)|no pg_hba\.conf entry/i,
    explain: () => ({
      what: 'Barman cannot connect to the primary',
      hint: "the roles barman and streaming_barman need backup.barman.password in Barman's ~/.pgpass and a pg_hba.conf rule for the repository host (pgplay's block, written by nightly-backup.yml)",
    }),
  },
  {
    test: /minimum redundancy/i,
    explain: (c) => ({ what: `server ${c.server} keeps fewer backups than minimum_redundancy would leave`, hint: 'backup.barman.minimumRedundancy protects the last backups from deletion; take a newer backup first' }),
  },
  {
    test: /not empty|already exists and is not empty|destination directory/i,
    explain: () => ({ what: 'the recovery destination is not usable', hint: 'pgplay empties it first only when its guards allow (never a running or foreign cluster)' }),
  },
  {
    test: /archive.*timeout|The WAL file .* has not been received|no WAL file received/i,
    explain: (c) => ({
      what: `no WAL reached Barman's server ${c.server} in time`,
      hint: `check the primary's archive_command (barman-wal-archive ${c.repoHost}-address ${c.server} %p), its SSH trust to barman@${c.repoHost}, and that barman cron runs (it starts receive-wal)`,
    }),
  },
];

/** The error lines of a failed barman run: its JSON _ERROR list, else ERROR:/EXCEPTION: lines of stderr, else the stderr tail. */
export function errorLines(stdout: string, stderr: string, jsonErrors: string[] = []): string[] {
  if (jsonErrors.length) return jsonErrors;
  const lines = `${stderr}\n${stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const marked = lines.filter((l) => /^(ERROR|EXCEPTION|CRITICAL):/.test(l)).map((l) => l.replace(/^(ERROR|EXCEPTION|CRITICAL):\s*/, ''));
  return marked.length ? marked : lines.slice(-3);
}

export function explainBarman(detail: string, ctx: FailureContext): Explanation | undefined {
  return KNOWN.find((k) => k.test.test(detail))?.explain(ctx);
}

/** The error for a failed barman command: what barman said, what it means, what to do. */
export function barmanFailure(exitCode: number, lines: string[], ctx: FailureContext, argv?: string[]): PgplayError {
  const detail = lines.join('; ') || `exit status ${exitCode} and no message`;
  const known = explainBarman(detail, ctx);
  return new PgplayError({
    code: 'STEP_FAILED',
    message: `barman ${ctx.command} failed${known ? ` (${known.what})` : ''}: ${detail}`,
    hint: known?.hint,
    command: argv ? { argv, rc: exitCode, stderrTail: lines.slice(-3) } : undefined,
  });
}
