/** The repository-level commands: info, stanza-create, check and verify. */
import { PgplayError } from '../../core/errors.js';
import {
  backupHorizon,
  parseVerifyText,
  stanzaExists,
  summarizeStanza,
  verifyFileProblems,
  verifyNotes,
  verifyProblems,
  verifyWalRanges,
  type StanzaInfo,
} from '../../postgres/pgbackrest-info.js';
import type { ActionContext } from '../types.js';
import { readInfo, type CommandHandler } from './common.js';
import type { PgbackrestInput } from './input.js';
import { optionArgs } from './input.js';

/** Problems quoted in a verify failure; the rest are counted. */
const VERIFY_PROBLEMS_SHOWN = 6;

function describeInfo(s: StanzaInfo): string {
  if (!stanzaExists(s)) return `stanza ${s.name}: ${s.status.message}`;
  const latest = s.backups[s.backups.length - 1];
  const archive = s.archive[s.archive.length - 1];
  const parts = [`stanza ${s.name}: ${s.status.message}`, `${s.backups.length} backup${s.backups.length === 1 ? '' : 's'}`];
  if (latest) parts.push(`latest ${latest.label} (${latest.type}, ${latest.stop_time})`);
  if (archive?.min) parts.push(`WAL ${archive.min}..${archive.max}`);
  return parts.join(', ');
}

export const info: CommandHandler = {
  async check(_ctx, _input, runner) {
    const s = await readInfo(runner);
    return { changed: false, msg: describeInfo(s), data: summarizeStanza(s) };
  },
};

/**
 * A stanza created for one database system must not silently serve another: pgBackRest would refuse
 * the backup later with a less direct message.
 */
function assertSameSystem(ctx: ActionContext, s: StanzaInfo): void {
  const here = ctx.facts.system_identifier;
  const current = s.db[s.db.length - 1];
  if (!here || !current?.system_id || current.system_id === here) return;
  throw new PgplayError({
    code: 'STEP_FAILED',
    message: `stanza ${s.name} belongs to database system ${current.system_id} (PostgreSQL ${current.version}), but ${ctx.host.name} runs system ${here}`,
    hint: 'after a major upgrade run pgbackrest stanza-upgrade; a different cluster needs its own stanza',
  });
}

export const stanzaCreate: CommandHandler = {
  async check(ctx, _input, runner) {
    const s = await readInfo(runner);
    if (stanzaExists(s)) {
      assertSameSystem(ctx, s);
      return { changed: false, msg: `stanza ${s.name} exists (${s.status.message})`, data: summarizeStanza(s) };
    }
    return { changed: true, msg: `would create stanza ${s.name} (info: ${s.status.message})` };
  },
  async apply(_ctx, input, runner) {
    await runner.run('stanza-create', optionArgs(input.options));
    const s = await readInfo(runner);
    return { changed: true, msg: `created stanza ${s.name}`, data: summarizeStanza(s) };
  },
};

export const check: CommandHandler = {
  async check(ctx, input, runner) {
    if (ctx.checkMode) {
      // `pgbackrest check` switches WAL and archives a segment on the primary: a change plan must not make.
      return { changed: false, skipped: true, msg: 'not run under --check: pgbackrest check forces a WAL switch and archives it' };
    }
    const r = await runner.run('check', [...processMax(input), ...optionArgs(input.options)]);
    const archived = r.log.map((l) => /^WAL segment (\S+) successfully archived to '([^']+)'/.exec(l.text)).find((m) => m);
    return {
      changed: false,
      msg: `pgbackrest check passed for stanza ${runner.stanza}${archived ? `: WAL segment ${archived[1]} reached the repository` : ''}`,
      data: { stanza: runner.stanza, ...(archived ? { wal_segment: archived[1], archived_to: archived[2] } : {}) },
    };
  },
};

export const verify: CommandHandler = {
  async check(_ctx, input, runner) {
    // Where the oldest backup's WAL starts: a gap before it breaks no restore (a note, not a failure).
    // DETAIL carries the contiguous WAL ranges; two on one timeline are a gap verify itself ignores.
    // Both only read the repository: info runs while verify does, not before it (awaited after verify,
    // so that a failing verify never leaves it unhandled).
    const verifying = runner.run('verify', ['--output=text', '--verbose', ...processMax(input), ...optionArgs(input.options)], { logLevel: 'detail' });
    const reading = readInfo(runner);
    reading.catch(() => undefined);
    const r = await verifying;
    const horizon = backupHorizon(await reading);
    const stanzas = parseVerifyText(r.stdout);
    if (stanzas.length === 0) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `pgbackrest verify printed no report: ${r.stdout.trim().slice(0, 200) || '(empty output)'}` });
    }
    const problems = verifyProblems(stanzas, r.log, horizon);
    const notes = verifyNotes(r.log, horizon);
    const files = verifyFileProblems(r.log);
    const backups = stanzas.flatMap((s) => s.backups);
    const archives = stanzas.flatMap((s) => s.archives);
    const data = {
      stanzas,
      status: problems.length ? 'error' : 'ok',
      backups_checked: backups.length,
      files_checked: backups.reduce((n, b) => n + b.total, 0),
      wal_checked: archives.reduce((n, a) => n + a.total, 0),
      wal_ranges: verifyWalRanges(r.log),
      problems,
      notes,
      file_problems: files,
    };
    if (problems.length > 0) {
      const shown = [...problems, ...files].slice(0, VERIFY_PROBLEMS_SHOWN);
      const more = problems.length + files.length - shown.length;
      throw new PgplayError({
        code: 'STEP_FAILED',
        message:
          `pgbackrest verify found ${problems.length} problem${problems.length === 1 ? '' : 's'} in stanza ${runner.stanza} ` +
          `(it exits 0 regardless): ${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}`,
        hint: 'a damaged backup or WAL gap breaks restores that need it: take a new full backup and find what altered the repository',
      });
    }
    return {
      changed: false,
      msg:
        `verify passed: ${data.backups_checked} backup${data.backups_checked === 1 ? '' : 's'} (${data.files_checked} files) and ${data.wal_checked} WAL segments valid` +
        notes.map((n) => `; note: ${n}`).join(''),
      data,
    };
  },
};

export function processMax(input: PgbackrestInput): string[] {
  return input.process_max !== undefined ? [`--process-max=${input.process_max}`] : [];
}
