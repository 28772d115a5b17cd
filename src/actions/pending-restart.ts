/**
 * pending_restart: which settings of a file about to be written will need a restart of the server,
 * known BEFORE the file is written. A playbook puts it ahead of its first change: restarting a running
 * primary is destructive, so the confirmation (or the refusal without a terminal and without --yes)
 * comes before anything is touched, and plan can say "would restart db1: archive_mode changed".
 *
 * It renders the template the later step will write, compares it with the file on the host and with
 * what the running server reports (pg_settings): a setting of context postmaster whose value the new
 * file changes, and that the server does not already run with, needs a restart. Read-only everywhere.
 */
import { PgplayError } from '../core/errors.js';
import { parseSettings, sameValue, type ServerSetting } from '../postgres/settings-file.js';
import { requirePgdata } from '../postgres/owner.js';
import { probe } from '../postgres/probe.js';
import { restartConfirmation } from '../postgres/restart-confirmation.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface PendingRestartInput {
  template: string;
  dest: string;
  vars?: Record<string, unknown>;
}

interface SettingRow extends ServerSetting {
  context: string;
  sourcefile: string | null;
}

export const pendingRestartAction: Action<PendingRestartInput> = {
  name: 'pending_restart',
  connects: true,
  // Reads only.
  changes: [],
  summary:
    'Read-only: which settings of a template about to be written (by a later template step) will need a restart of the ' +
    'host\'s running server. Registers settings (the names) and reason; when the host is a running primary and a restart ' +
    'will be needed, the run asks for confirmation here, before any change (--yes answers; it also answers the restart step).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['template', 'dest'],
    properties: {
      template: { type: 'string', minLength: 1, description: 'The template the later step renders (same src, same vars).' },
      dest: { type: 'string', pattern: '^/', description: 'The file it will be written to (its current content is compared).' },
      vars: { type: 'object', description: 'Extra template variables, as the template step passes them.' },
    },
  },

  templates: (input) => [{ src: input.template, vars: input.vars }],

  confirmation() {
    return 'asks for confirmation when a changed setting will need a restart of a running primary';
  },

  async check(ctx, input) {
    return pendingRestart(ctx, input);
  },

  async apply(ctx, input) {
    return pendingRestart(ctx, input);
  },

  // Read-only: what the plan found, as a comment; the restart itself is a later step's.
  async exportShell(ctx, input, planned) {
    const reason = typeof planned.data?.reason === 'string' ? planned.data.reason : '';
    return {
      comments: [
        reason
          ? `a restart of ${ctx.host.name} will be needed: ${reason} (the rendered ${input.dest} against pg_settings)`
          : `check: the rendered ${input.dest} changes no setting that needs a restart of ${ctx.host.name}'s server (pg_settings context postmaster)`,
      ],
    };
  },
};

export default pendingRestartAction;

async function pendingRestart(ctx: ActionContext, input: PendingRestartInput): Promise<Outcome> {
  requirePgdata(ctx.host);
  const facts = await probe(ctx);
  if (!facts.running) {
    return { changed: false, msg: 'not running: the settings take effect when it starts', data: { settings: [], reason: '' } };
  }
  const wanted = parseSettings(await ctx.renderTemplate(input.template, input.vars ?? {}));
  const current = await ctx.transport.readFile(input.dest, { become: ctx.host.postgres.osUser });
  const before = current === null ? new Map<string, string>() : parseSettings(current.toString('utf8'));
  const rows = await serverSettings(ctx, [...new Set([...wanted.keys(), ...before.keys()])]);

  const settings: string[] = [];
  for (const [name, row] of rows) {
    if (row.context !== 'postmaster') continue;
    const value = wanted.get(name);
    if (value === undefined) {
      // Removed from the file: the server's value falls back to another source, or the default.
      if (before.has(name) && row.sourcefile === input.dest) settings.push(name);
      continue;
    }
    // The file already says it and the server does not run with it: something else overrides it
    // (postgresql.auto.conf, the command line), and a restart would not change that.
    if (before.get(name) === value) continue;
    if (!sameValue(value, row)) settings.push(name);
  }
  settings.sort();
  const reason = settings.length ? `${settings.join(', ')} changed` : '';
  if (!settings.length) return { changed: false, msg: 'no restart needed', data: { settings, reason } };
  return {
    changed: false,
    msg: `would restart ${ctx.host.name}: ${reason}`,
    data: { settings, reason },
    confirm: restartConfirmation(ctx.host, facts, reason),
  };
}

async function serverSettings(ctx: ActionContext, names: string[]): Promise<Map<string, SettingRow>> {
  let client;
  try {
    client = await ctx.connectPostgres();
  } catch (e) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `cannot read the settings of ${ctx.host.name} to tell whether a restart will be needed: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  try {
    const res = await client.query<SettingRow>(
      `select name, setting, unit, vartype, context, sourcefile, current_setting(name) as shown
         from pg_settings where name = any($1::text[])`,
      [names],
    );
    return new Map(res.rows.map((r) => [r.name, r]));
  } finally {
    await client.end().catch(() => undefined);
  }
}
