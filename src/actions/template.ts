import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { failedCommand, PgplayError } from '../core/errors.js';
import type { FileStat } from '../transports/types.js';
import { unifiedDiff } from './diff.js';
import { refuseWriteIntoOtherPgdata } from './identity-guard.js';
import { word, writeFileLines } from './shell-export.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface TemplateInput {
  src: string;
  dest: string;
  mode?: string;
  owner?: string;
  group?: string;
  vars?: Record<string, unknown>;
  secrets?: string[];
  backup?: boolean;
}

export const MODE_PATTERN = '^[0-7]{3,4}$';
const SECRET_PATH_PATTERN = '^[A-Za-z][A-Za-z0-9_]*(\\.[A-Za-z][A-Za-z0-9_]*)*$';

export const templateAction: Action<TemplateInput> = {
  name: 'template',
  // A rendered file: no fact describes it.
  changes: [],
  summary:
    'Renders a Handlebars template to a file: atomic write, mode and owner, a unified diff of what changes, ' +
    'and the replaced file kept as <dest>.pgplay-prev.',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dest'],
    properties: {
      src: { type: 'string', minLength: 1, description: 'Template file: a path relative to templates/ or the playbook, or absolute.' },
      dest: { type: 'string', pattern: '^/', description: 'Absolute path of the file to write on the host.' },
      mode: {
        type: 'string',
        pattern: MODE_PATTERN,
        description: 'Permission bits in octal, quoted: "0600". Unset: a replaced file keeps its mode, a new one gets 0644 (less the umask).',
      },
      owner: { type: 'string', minLength: 1, description: 'Owning OS user. Unset: a replaced file keeps its owner, a new one belongs to the become user.' },
      group: { type: 'string', minLength: 1, description: 'Owning OS group. Unset: kept, or the owner\'s primary group for a new file.' },
      vars: { type: 'object', description: 'Extra variables for this template, visible as top-level names (e.g. {{port}}).' },
      secrets: {
        type: 'array',
        items: { type: 'string', pattern: SECRET_PATH_PATTERN },
        uniqueItems: true,
        description:
          'Inventory secrets the template may write, by their path in the inventory (e.g. backup.cipherPass): each {env}/{file} reference is ' +
          'resolved and visible as secrets.<path> (absent when the inventory does not set it). Diffs and output mask the value; the file should be 0600 or 0640.',
      },
      backup: { type: 'boolean', default: true, description: 'Keep the replaced file as <dest>.pgplay-prev (default true).' },
    },
  },

  readAhead(input) {
    return [input.dest];
  },

  // Its secrets are resolved only when it renders: the engine checks the template with them absent.
  templates: (input) => [{ src: input.src, vars: input.vars }],

  async check(ctx, input) {
    const p = await plan(ctx, input);
    return outcome(ctx, input, p, false);
  },

  async exportShell(ctx, input) {
    const p = await plan(ctx, input);
    // Written whole whatever the plan found: the file as pgplay wants it, also after a restore replaced it.
    const commands = [
      ...((input.backup ?? true) ? [`if [ -e ${word(p.target)} ]; then cp -p ${word(p.target)} ${word(`${p.target}.pgplay-prev`)}; fi`] : []),
      ...writeFileLines(p.target, p.rendered, { mode: p.wantMode ?? (p.stat.exists ? p.stat.mode : undefined), owner: input.owner ?? (p.current === null ? ctx.become : undefined), group: input.group }),
    ];
    return { runAlways: true, comments: [`${input.dest}: ${p.contentChanged ? 'content changes' : 'same content'}${p.attributes.length ? `; ${p.attributes.join(', ')}` : ''}`], commands };
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    let previous: string | undefined;
    if (p.contentChanged) {
      const written = await ctx.transport.writeFile(input.dest, p.rendered, {
        mode: p.wantMode,
        owner: input.owner,
        group: input.group,
        keepPrevious: (input.backup ?? true) && p.current !== null,
        become: ctx.become,
      });
      previous = written.previousPath;
    } else if (p.attributes.length > 0) {
      // Same bytes: only the attributes change; the file is not rewritten and no previous copy is made.
      await fixAttributes(ctx, p.target, input, p.wantMode);
    }
    return outcome(ctx, input, p, true, previous);
  },
};

export default templateAction;

interface Plan {
  rendered: string;
  current: Buffer | null;
  /** The file the write lands on: dest itself, or what a symlink at dest points to. */
  target: string;
  stat: FileStat;
  wantMode?: number;
  contentChanged: boolean;
  /** Human lines for each attribute that differs: "mode: 0644 -> 0600". */
  attributes: string[];
}

/** Everything check decides, read-only; apply recomputes it so it acts on the state it finds. */
async function plan(ctx: ActionContext, input: TemplateInput): Promise<Plan> {
  refuseWriteIntoOtherPgdata(ctx, input.dest);
  const secrets = await resolveSecrets(ctx, input.secrets ?? []);
  const rendered = await ctx.renderTemplate(input.src, input.secrets?.length ? { ...(input.vars ?? {}), secrets } : (input.vars ?? {}));
  const current = await ctx.transport.readFile(input.dest, { become: ctx.become });
  const { path: target, stat } = current === null ? { path: input.dest, stat: { exists: false } } : await statFollowing(ctx, input.dest);
  const wantMode = input.mode !== undefined ? parseMode(input.mode) : undefined;
  const contentChanged = current === null || !current.equals(Buffer.from(rendered, 'utf8'));
  const attributes: string[] = [];
  if (current === null) {
    attributes.push('new file');
    if (wantMode !== undefined) attributes.push(`mode: ${formatMode(wantMode)}`);
    if (input.owner !== undefined) attributes.push(`owner: ${input.owner}`);
    if (input.group !== undefined) attributes.push(`group: ${input.group}`);
  } else {
    if (wantMode !== undefined && stat.mode !== wantMode) attributes.push(`mode: ${formatMode(stat.mode)} -> ${formatMode(wantMode)}`);
    if (input.owner !== undefined && stat.owner !== input.owner) attributes.push(`owner: ${stat.owner} -> ${input.owner}`);
    if (input.group !== undefined && stat.group !== input.group) attributes.push(`group: ${stat.group} -> ${input.group}`);
  }
  return { rendered, current, target, stat, wantMode, contentChanged, attributes };
}

function outcome(ctx: ActionContext, input: TemplateInput, p: Plan, applied: boolean, previous?: string): Outcome {
  const changed = p.contentChanged || p.attributes.length > 0;
  // A checksum of a file holding a secret would let anyone who reads the journal test guesses of it.
  const data: Record<string, unknown> = input.secrets?.length
    ? { dest: input.dest }
    : { dest: input.dest, checksum: createHash('sha256').update(p.rendered, 'utf8').digest('hex') };
  if (previous) data.previous = previous;
  if (!changed) return { changed: false, msg: `${input.dest} is up to date`, data };
  const what = [
    ...(p.current !== null && p.contentChanged ? ['content'] : []),
    ...p.attributes.filter((a) => a !== 'new file').map((a) => a.slice(0, a.indexOf(':'))),
  ];
  const msg =
    p.current === null
      ? `${applied ? 'created' : 'would create'} ${input.dest}`
      : `${applied ? 'updated' : 'would update'} ${input.dest}: ${what.join(', ')}`;
  const result: Outcome = { changed: true, msg, data };
  if (ctx.diff) {
    const text = p.contentChanged
      ? unifiedDiff(p.current?.toString('utf8') ?? '', p.rendered, {
          fromLabel: `${input.dest} (current)`,
          toLabel: `${input.dest} (rendered)`,
        })
      : '';
    result.diff = [...p.attributes.map((a) => a + '\n'), text].join('');
  }
  return result;
}

/**
 * `secrets: [backup.cipherPass]` as { backup: { cipherPass: '<resolved>' } }. Resolving registers each
 * value with the redactor, so the diff, the step's message and the journal mask it.
 */
async function resolveSecrets(ctx: ActionContext, paths: string[]): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const path of paths) {
    const keys = path.split('.');
    let ref: unknown = ctx.inventory;
    for (const k of keys) ref = ref !== null && typeof ref === 'object' ? (ref as Record<string, unknown>)[k] : undefined;
    if (ref === undefined) continue;
    const value = await ctx.secret(ref);
    if (value === undefined) continue;
    // Configuration files are read line by line: a line break would smuggle settings in.
    if (/[\r\n]/.test(value)) throw new PgplayError({ code: 'SEMANTIC', message: `the secret ${path} must be a single line`, expected: 'a value without line breaks' });
    let at = out;
    for (const k of keys.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[keys.at(-1)!] = value;
  }
  return out;
}

/** chown before chmod: chown clears set-id bits. Runs as the become user, like every other change. */
function attributeArgv(path: string, input: TemplateInput, wantMode: number | undefined): string[][] {
  const commands: string[][] = [];
  if (input.owner !== undefined || input.group !== undefined) {
    commands.push(['chown', `${input.owner ?? ''}${input.group !== undefined ? ':' + input.group : ''}`, '--', path]);
  }
  if (wantMode !== undefined) commands.push(['chmod', formatMode(wantMode), '--', path]);
  return commands;
}

async function fixAttributes(ctx: ActionContext, path: string, input: TemplateInput, wantMode: number | undefined): Promise<void> {
  for (const argv of attributeArgv(path, input, wantMode)) {
    const r = await ctx.transport.exec(argv, { become: ctx.become, signal: ctx.signal, timeoutMs: ctx.timeoutMs, env: { LC_ALL: 'C' } });
    if (r.exitCode !== 0) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `${argv[0]} ${path} failed (rc ${r.exitCode}): ${r.stderr.trim()}`, command: failedCommand(r) });
    }
  }
}

/** A symlinked config is judged by the file it points to, which is also where the write lands. */
export async function statFollowing(ctx: ActionContext, path: string): Promise<{ path: string; stat: FileStat }> {
  let current = path;
  for (let hops = 0; hops < 20; hops++) {
    const st = await ctx.transport.stat(current, { become: ctx.become });
    if (st.type !== 'symlink' || st.linkTarget === undefined) return { path: current, stat: st };
    current = posix.resolve(posix.dirname(current), st.linkTarget);
  }
  throw new PgplayError({ code: 'STEP_FAILED', message: `${path}: too many levels of symbolic links` });
}

export function parseMode(mode: string): number {
  if (!new RegExp(MODE_PATTERN).test(mode)) {
    throw new PgplayError({ code: 'SCHEMA', message: `invalid mode "${mode}"`, expected: 'octal permission bits such as "0600"' });
  }
  return parseInt(mode, 8);
}

export function formatMode(mode: number | undefined): string {
  return mode === undefined ? '?' : mode.toString(8).padStart(4, '0');
}
