/**
 * The pgbackrest action: pgBackRest 2.45's commands with typed options, each with its own idea of
 * "changed" (backup always; stanza-create only when the stanza is missing; expire when retention
 * removes something; stop/start by the stop file; info, check and verify never). Commands run as the
 * host's PostgreSQL OS user with an argv; see pgbackrest/runner.ts for how output is read and how the
 * cipher passphrase is kept off every command line, and pgbackrest/restore.ts for the restore guards.
 */
import type { Action, ActionContext, Outcome } from './types.js';
import { backup, expire } from './pgbackrest/backup.js';
import type { CommandHandler } from './pgbackrest/common.js';
import { start, stop } from './pgbackrest/control.js';
import { inputSchema, resolveInput, validateInput, type PgbackrestCommand, type PgbackrestInput } from './pgbackrest/input.js';
import { check, info, stanzaCreate, verify } from './pgbackrest/repository.js';
import { restore, restoreArgs, restoreGuards, targetPgdata } from './pgbackrest/restore.js';
import { commandLine, secretShell } from './shell-export.js';
import { PgplayError } from '../core/errors.js';
import { PgbackrestRunner } from './pgbackrest/runner.js';

export type { PgbackrestInput } from './pgbackrest/input.js';

const handlers: Record<PgbackrestCommand, CommandHandler> = {
  'stanza-create': stanzaCreate,
  check,
  backup,
  expire,
  info,
  restore,
  verify,
  stop,
  start,
};

const READ_ONLY = new Set<PgbackrestCommand>(['info', 'check', 'verify']);
/** What may run for real under plan: `check` is missing because it switches WAL and archives a segment. */
const READS_ONLY = new Set<PgbackrestCommand>(['info', 'verify']);

function prepare(ctx: ActionContext, input: PgbackrestInput): { handler: CommandHandler; runner: PgbackrestRunner } {
  validateInput(input, ctx.host);
  const { stanza, config } = resolveInput(input, ctx.host, ctx.inventory);
  return { handler: handlers[input.command], runner: new PgbackrestRunner(ctx, stanza, config) };
}

export const pgbackrestAction: Action<PgbackrestInput> = {
  name: 'pgbackrest',
  summary:
    'Runs pgBackRest (stanza-create, check, backup, expire, info, restore, verify, stop, start) as the PostgreSQL OS user, ' +
    'reads its JSON and log output, and guards restores (never over a running cluster or the primary).',
  schema: inputSchema,
  destructive(input) {
    return input.command === 'restore';
  },
  readOnly(input) {
    return READS_ONLY.has(input.command);
  },
  // A copy restored to promote leaves recovery at its first start.
  changesRole(input) {
    return input.command === 'restore' && input.target_action === 'promote' ? 'promotes' : false;
  },
  // A restore rewrites PGDATA (the server stays stopped); the other commands change no fact of the host.
  changes: (input) => (input.command === 'restore' ? ['pgdata'] : []),

  async check(ctx, input): Promise<Outcome> {
    const { handler, runner } = prepare(ctx, input);
    if (ctx.checkMode && runner.config && !(await ctx.transport.stat(runner.config, { become: ctx.host.postgres.osUser })).exists) {
      // Under --check the step that renders pgbackrest.conf has not run yet: say so instead of failing.
      const note = `${runner.config} does not exist yet`;
      // What a restore would destroy does not depend on that file: its guards hold in plan all the same.
      if (input.command === 'restore') {
        const { notes } = await restoreGuards(ctx, input, targetPgdata(ctx));
        return { changed: true, msg: `would run pgbackrest restore (${[note, ...notes].join('; ')})` };
      }
      return READ_ONLY.has(input.command)
        ? { changed: false, skipped: true, msg: `pgbackrest ${input.command} not run: ${note}` }
        : { changed: true, msg: `would run pgbackrest ${input.command} (${note})` };
    }
    return handler.check(ctx, input, runner);
  },

  // The restore (what a standby build or a restore needs by hand); its guards ran in check, at plan time.
  async exportShell(ctx, input) {
    const { runner } = prepare(ctx, input);
    if (input.command !== 'restore') throw new PgplayError({ code: 'USAGE', message: `pgbackrest ${input.command} is not exported (only restore is)` });
    const argv = runner.argv('restore', restoreArgs(input, targetPgdata(ctx)));
    const cipher = ctx.inventory.backup?.cipherPass;
    const secret = cipher ? secretShell(cipher) : undefined;
    const line = commandLine(argv, ctx.host.postgres.osUser);
    // The cipher passphrase as pgBackRest reads it from the environment, by reference.
    const command = secret ? line.replace(/^(runuser -u \S+ -- )?/, `$1env PGBACKREST_REPO1_CIPHER_PASS="${secret.expr}" `) : line;
    return { comments: ['the target must be stopped (the step before stops it); pgBackRest refuses a running cluster'], commands: [command], env: secret?.env ?? [] };
  },

  async apply(ctx, input, planned): Promise<Outcome> {
    const { handler, runner } = prepare(ctx, input);
    // Read-only commands did their work in check, which the engine ran first.
    if (!handler.apply) return planned;
    return handler.apply(ctx, input, runner, planned);
  },
};

export default pgbackrestAction;
