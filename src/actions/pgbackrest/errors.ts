/**
 * pgBackRest's exit code is its error code. The ones a DBA meets during DR work get a sentence that
 * says what it means and what to do; pgBackRest's own HINT lines follow.
 */
import { PgplayError } from '../../core/errors.js';
import type { PgbackrestErrorReport } from '../../postgres/pgbackrest-info.js';

export const PGBACKREST_ERROR = {
  OPTION_INVALID: 31,
  OPTION_REQUIRED: 37,
  PG_RUNNING: 38,
  PATH_NOT_EMPTY: 40,
  ARCHIVE_DUPLICATE: 45,
  LOCK_ACQUIRE: 50,
  FILE_MISSING: 55,
  STOP: 62,
  ARCHIVE_TIMEOUT: 82,
} as const;

interface Explanation {
  what: string;
  hint: string;
}

function explain(code: number, ctx: { command: string; stanza: string; config?: string }): Explanation | undefined {
  const conf = ctx.config ?? 'the default pgbackrest.conf';
  switch (code) {
    case PGBACKREST_ERROR.OPTION_REQUIRED:
      return { what: 'a required option is missing', hint: `is stanza ${ctx.stanza} defined in ${conf}?` };
    case PGBACKREST_ERROR.PG_RUNNING:
      return { what: 'PostgreSQL is running in the target PGDATA', hint: 'stop the cluster first; pgBackRest never restores over a running server' };
    case PGBACKREST_ERROR.PATH_NOT_EMPTY:
      return { what: 'the restore target is not empty', hint: 'use delta: true to restore over an existing PGDATA (only files that differ are copied)' };
    case PGBACKREST_ERROR.ARCHIVE_DUPLICATE:
      return {
        what: 'the archive already holds this WAL segment with a different checksum: two clusters archive into the same stanza (split brain)',
        hint: `fence the old primary and make sure only the current primary's archive_command pushes to stanza ${ctx.stanza}; take a new full backup after a promotion`,
      };
    case PGBACKREST_ERROR.LOCK_ACQUIRE:
      return { what: `another pgBackRest process holds the lock for stanza ${ctx.stanza}`, hint: 'a backup, expire or stanza command is still running: wait for it, or retry later' };
    case PGBACKREST_ERROR.FILE_MISSING:
      return { what: 'a file pgBackRest needs is missing', hint: ctx.config ? `does ${ctx.config} exist and is it readable by the PostgreSQL OS user?` : 'check the configuration file and the repository path' };
    case PGBACKREST_ERROR.STOP:
      return {
        what: 'pgBackRest is stopped (a stop file exists)',
        hint: 'run `pgbackrest start` (the pgbackrest action with command: start) once it is safe to let pgBackRest run again',
      };
    case PGBACKREST_ERROR.ARCHIVE_TIMEOUT:
      return {
        what: 'WAL did not reach the repository before the archive timeout',
        hint: `check archive_command (it must run pgbackrest${ctx.config ? ` --config=${ctx.config}` : ''} --stanza=${ctx.stanza} archive-push %p), archive_mode = on, and the PostgreSQL server log`,
      };
    default:
      return undefined;
  }
}

/** The error for a failed pgBackRest command, from its exit code and the ERROR entry of its log. */
export function pgbackrestFailure(
  exitCode: number,
  report: PgbackrestErrorReport | undefined,
  stderrTail: string,
  ctx: { command: string; stanza: string; config?: string; argv?: string[]; rc?: number },
): PgplayError {
  const code = report?.code ?? exitCode;
  const known = explain(code, ctx);
  const detail = report?.message ?? (stderrTail || 'no error message');
  const message = `pgbackrest ${ctx.command} failed with error ${code}${known ? ` (${known.what})` : ''}: ${detail}`;
  const hints = [...(known ? [known.hint] : []), ...(report?.hints ?? [])];
  const command = ctx.argv ? { argv: ctx.argv, rc: ctx.rc, stderrTail: stderrTail ? [stderrTail] : [] } : undefined;
  return new PgplayError({ code: 'STEP_FAILED', message, hint: hints.length ? hints.join('; ') : undefined, command });
}
