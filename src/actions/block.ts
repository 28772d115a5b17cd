/**
 * block: keeps one block of lines, between marker lines, in a file that is otherwise the user's
 * (pg_hba.conf above all). pgplay never replaces such a file: it rewrites its own block and nothing else,
 * and a replaced file keeps its owner and mode (the transport keeps them when none are asked for).
 */
import { PgplayError } from '../core/errors.js';
import { beginLine, BlockError, blockLines, endLine, placeBlock, type BlockPosition } from '../text/managed-block.js';
import { word } from './shell-export.js';
import { unifiedDiff } from './diff.js';
import { formatMode, MODE_PATTERN, parseMode, statFollowing } from './template.js';
import type { Action, ActionContext, Outcome } from './types.js';

export interface BlockInput {
  path: string;
  content?: string;
  template?: string;
  vars?: Record<string, unknown>;
  marker?: string;
  position?: BlockPosition;
  create?: boolean;
  mode?: string;
  owner?: string;
  group?: string;
  backup?: boolean;
  legacy_first_line?: string;
}

export const DEFAULT_MARKER = 'pgplay managed block';

export const blockAction: Action<BlockInput> = {
  name: 'block',
  // A block of a configuration file: no fact describes it (a reload or restart step changes the server).
  changes: [],
  summary:
    'Keeps one block of lines between "# BEGIN <marker>" and "# END <marker>" in a file that is otherwise yours (like ' +
    'Ansible\'s blockinfile): only the block is rewritten, every other line stays, the file keeps its owner and mode, and the ' +
    'diff shows the block\'s change. The first time, the block goes before the first entry of the file (first match wins in pg_hba.conf).',
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    oneOf: [{ required: ['content'] }, { required: ['template'] }],
    properties: {
      path: { type: 'string', pattern: '^/', description: 'Absolute path of the file on the host (a symbolic link is followed).' },
      content: { type: 'string', description: 'The lines of the block (without the marker lines).' },
      template: { type: 'string', minLength: 1, description: 'A template rendering the lines of the block: a path relative to templates/ or the playbook, or absolute.' },
      vars: { type: 'object', description: 'Extra variables for the template, visible as top-level names.' },
      marker: {
        type: 'string',
        minLength: 1,
        pattern: '^[^\\n]+$',
        default: DEFAULT_MARKER,
        description: `The block is between "# BEGIN <marker>" and "# END <marker>" (default "${DEFAULT_MARKER}"); one file may hold blocks of several markers.`,
      },
      position: {
        enum: ['first-entry', 'top', 'bottom'],
        default: 'first-entry',
        description:
          'Where the block goes when the file has none: first-entry (default) before the first line that is not blank or a comment, ' +
          'with the comment lines right above it; top; bottom. An existing block stays where it is.',
      },
      create: { type: 'boolean', default: false, description: 'Create the file (holding only the block) when it does not exist. Default: a missing file is an error.' },
      mode: { type: 'string', pattern: MODE_PATTERN, description: 'Mode of a created file ("0600"). An existing file keeps its mode.' },
      owner: { type: 'string', minLength: 1, description: 'Owner of a created file. An existing file keeps its owner.' },
      group: { type: 'string', minLength: 1, description: 'Group of a created file. An existing file keeps its group.' },
      backup: { type: 'boolean', default: true, description: 'Keep the replaced file as <path>.pgplay-prev (default true).' },
      legacy_first_line: {
        type: 'string',
        minLength: 1,
        description:
          'A regular expression: a file without the block whose first line matches was written whole by an older pgplay and is ' +
          'converted (that line, the lines the block now holds and pgplay\'s old section markers go; every other line stays below the block).',
      },
    },
  },

  readAhead(input) {
    return [input.path];
  },

  templates: (input) => (input.template !== undefined ? [{ src: input.template, vars: input.vars }] : []),

  async check(ctx, input) {
    return outcome(ctx, input, await plan(ctx, input), false);
  },

  // Edited in place when the script runs (earlier steps, a restore, may have changed the file since the
  // plan): the block between its markers replaced, else inserted where pgplay inserts it.
  async exportShell(ctx, input) {
    const p = await plan(ctx, input);
    const content = input.template !== undefined ? await ctx.renderTemplate(input.template, input.vars ?? {}) : (input.content ?? '');
    const marker = input.marker ?? DEFAULT_MARKER;
    const position = input.position ?? 'first-entry';
    const created = [
      `cp "$blk" "$f"`,
      ...(input.mode !== undefined ? [`chmod ${formatMode(parseMode(input.mode))} "$f"`] : []),
      ...(input.owner !== undefined || input.group !== undefined ? [`chown ${word(`${input.owner ?? ''}${input.group !== undefined ? `:${input.group}` : ''}`)} "$f"`] : []),
    ];
    const commands = [
      `f=${word(p.target)}`,
      'blk=$(mktemp)',
      `cat > "$blk" <<'PGPLAY_BLOCK'`,
      ...blockLines(content, marker),
      'PGPLAY_BLOCK',
      'if [ ! -e "$f" ]; then',
      ...(input.create ? created : [`echo "$f does not exist: the block goes into an existing file" >&2`, 'exit 1']),
      'else',
      ...((input.backup ?? true) ? ['cp -p "$f" "$f.pgplay-prev"'] : []),
      'tmp=$(mktemp "$f.pgplay-XXXXXX")',
      `b=${word(beginLine(marker))} e=${word(endLine(marker))} awk -v blk="$blk" -v pos=${position} '${BLOCK_AWK}' "$f" "$f" > "$tmp"`,
      'chmod --reference="$f" "$tmp"',
      'chown --reference="$f" "$tmp"',
      'mv -f "$tmp" "$f"',
      'fi',
      'rm -f "$blk"',
    ];
    return { runAlways: true, comments: [`${input.path}: the block between "${beginLine(marker)}" and "${endLine(marker)}"; every other line stays`], commands };
  },

  async apply(ctx, input) {
    const p = await plan(ctx, input);
    let previous: string | undefined;
    if (p.changed) {
      const created = p.current === null;
      const written = await ctx.transport.writeFile(p.target, p.next, {
        // A new file gets what the input asks; an existing one keeps its own (the transport's default).
        ...(created ? { mode: input.mode !== undefined ? parseMode(input.mode) : undefined, owner: input.owner, group: input.group } : {}),
        keepPrevious: (input.backup ?? true) && !created,
        become: ctx.become,
      });
      previous = written.previousPath;
    }
    return outcome(ctx, input, p, true, previous);
  },
};

export default blockAction;

/**
 * The block's placement in awk, over the file read twice: the first pass learns whether the block is
 * there; the second replaces it between its markers, or inserts it at the top, before the first entry
 * (a line neither blank nor a comment) or at the bottom.
 */
const BLOCK_AWK = [
  'function put(  l) { while ((getline l < blk) > 0) print l; close(blk); done = 1 }',
  'NR == FNR { if ($0 == ENVIRON["b"]) has = 1; next }',
  'has && $0 == ENVIRON["b"] { put(); skip = 1; next }',
  'skip { if ($0 == ENVIRON["e"]) skip = 0; next }',
  '!has && !done && pos == "top" { put() }',
  '!has && !done && pos == "first-entry" && $0 !~ /^[ \t]*(#|$)/ { put(); print "" }',
  '{ print }',
  'END { if (!done) put() }',
].join('; ');

interface Plan {
  target: string;
  current: string | null;
  next: string;
  changed: boolean;
  how: string;
}

async function plan(ctx: ActionContext, input: BlockInput): Promise<Plan> {
  const content = input.template !== undefined ? await ctx.renderTemplate(input.template, input.vars ?? {}) : (input.content ?? '');
  const raw = await ctx.transport.readFile(input.path, { become: ctx.become });
  if (raw === null && !input.create) {
    throw new PgplayError({
      code: 'STEP_FAILED',
      message: `${input.path} does not exist on ${ctx.host.name}: the block goes into an existing file`,
      expected: 'the file, or create: true to make it holding only the block',
    });
  }
  let target = input.path;
  if (raw !== null) {
    const { path, stat } = await statFollowing(ctx, input.path);
    if (stat.type !== 'file') throw new PgplayError({ code: 'STEP_FAILED', message: `${input.path} is not a regular file` });
    target = path;
  }
  const current = raw === null ? null : raw.toString('utf8');
  let legacy: RegExp | undefined;
  if (input.legacy_first_line !== undefined) {
    try {
      legacy = new RegExp(input.legacy_first_line);
    } catch (e) {
      throw new PgplayError({ code: 'SCHEMA', message: `block.legacy_first_line is not a regular expression: ${(e as Error).message}` });
    }
  }
  try {
    const placed = placeBlock(current, content, { marker: input.marker ?? DEFAULT_MARKER, position: input.position ?? 'first-entry', legacyFirstLine: legacy });
    return { target, current, next: placed.text, changed: placed.text !== current, how: current === null ? 'create' : placed.action };
  } catch (e) {
    if (e instanceof BlockError) throw new PgplayError({ code: 'STEP_FAILED', message: `${input.path} on ${ctx.host.name}: ${e.message}` });
    throw e;
  }
}

const VERBS: Record<string, [string, string]> = {
  create: ['would create', 'created'],
  inserted: ['would insert the block into', 'inserted the block into'],
  replaced: ['would update the block in', 'updated the block in'],
  converted: ['would convert to the block form', 'converted to the block form'],
};

function outcome(ctx: ActionContext, input: BlockInput, p: Plan, applied: boolean, previous?: string): Outcome {
  const data: Record<string, unknown> = { path: input.path, marker: input.marker ?? DEFAULT_MARKER };
  if (previous) data.previous = previous;
  if (!p.changed) return { changed: false, msg: `the block in ${input.path} is up to date`, data };
  const verbs = VERBS[p.how] ?? ['would change', 'changed'];
  const result: Outcome = { changed: true, msg: `${applied ? verbs[1] : verbs[0]} ${input.path}`, data };
  if (ctx.diff) {
    const notes = p.current === null && input.mode !== undefined ? [`mode: ${formatMode(parseMode(input.mode))}\n`] : [];
    // Three lines of context: the hunks show the block and where it sits, not the rest of the file.
    result.diff = notes.join('') + unifiedDiff(p.current ?? '', p.next, { fromLabel: `${input.path} (current)`, toLabel: `${input.path} (with the block)` });
  }
  return result;
}
