import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { selectHosts } from '../load/hosts.js';
import type { Host } from '../model/inventory.js';
import type { IncludeInput, Playbook, Step } from '../model/playbook.js';
import { didYouMean } from '../schema/describe.js';
import { isTemplated } from '../schema/templated.js';

export interface Selection {
  /** --limit as host names (a role or `all` stands for its hosts); undefined: every host. */
  limit?: string[];
}

/**
 * --tags and --limit must select something: a typo in either would otherwise make a run that does
 * nothing and exits 0, which a cron job reads as "backed up". Checked before anything runs (exit 2).
 * What cannot be told before the run (hosts rendered from registered values, templated includes)
 * counts as a match.
 */
export async function checkSelection(
  playbook: Playbook,
  playbookFile: string,
  hosts: Record<string, Host>,
  options: { limit?: string[]; tags?: string[] },
  loadInclude: (file: string, fromDir: string) => Promise<Playbook>,
): Promise<Selection> {
  if (options.tags?.length) {
    const known = await tagsOf(playbook, dirname(resolve(playbookFile)), loadInclude, new Set());
    for (const tag of options.tags) {
      if (known.has(tag)) continue;
      const guess = didYouMean(tag, [...known]);
      throw new PgplayError({
        code: 'USAGE',
        message: `--tags: no step has the tag "${tag}"${guess ? `; did you mean "${guess}"?` : ''}`,
        expected: known.size ? `tags of ${playbookFile}: ${[...known].sort().join(', ')}` : `no tags: ${playbookFile} tags none of its steps`,
      });
    }
  }
  if (!options.limit) return {};
  let limit: string[];
  try {
    limit = selectHosts(options.limit, hosts);
  } catch (e) {
    throw new PgplayError({ code: 'USAGE', message: `--limit: ${(e as PgplayError).message}`, expected: (e as PgplayError).expected });
  }
  const steps = [...playbook.steps, ...Object.entries(playbook.handlers ?? {}).map(([id, h]) => ({ ...h, id }) as Step)].filter((s) => tagsMatch(s, options.tags));
  const targeted = new Set<string>();
  for (const step of steps) {
    const pattern = step.hosts;
    // An include's steps name their own hosts; templated hosts are known only at run time.
    if (step.include !== undefined || (pattern !== undefined && [pattern].flat().some((p) => isTemplated(p)))) return { limit };
    // A handler without hosts runs where the steps that notified it ran.
    if (pattern === undefined) continue;
    for (const h of selectHosts(pattern, hosts)) targeted.add(h);
  }
  if (!limit.some((h) => targeted.has(h))) {
    const selected = options.tags?.length ? ` tagged ${options.tags.join(', ')}` : '';
    throw new PgplayError({
      code: 'USAGE',
      message: `--limit ${options.limit.join(',')}: no step of ${playbookFile}${selected} runs on ${limit.length ? limit.join(', ') : 'any host'}`,
      expected: targeted.size ? `hosts the steps run on: ${[...targeted].join(', ')}` : undefined,
    });
  }
  return { limit };
}

/** One step of a list as --from and --tags select it. */
export interface SelectedStep {
  step: Step;
  index: number;
  /** Its id in the run: the include path before it (`<include-id>/`, `<include-id>[<i>]/`) and its own. */
  id: string;
  /**
   * --from (not reached yet), --tags (not selected) or an include passed by: of such a step only a guard
   * runs, and an include is entered only for the guards it holds (guards.ts: safety steps cannot be skipped).
   */
  passedBy: boolean;
  /** --from names a step inside this include (not looped): it is entered, and passes its own steps by up to that one. */
  fromInside: boolean;
}

/**
 * Which steps of a list run, the one rule the scheduler (schedule.ts) and the pre-flight render
 * (preflight-render.ts) both follow, so that the pre-flight checks exactly the steps the run may reach.
 * `from` is --from (not for handlers: they run because steps that ran notified them); inside an include
 * (prefix), --from is reached already unless it names a step of this very include. guardsOnly: the list
 * is an include passed by, all of whose steps are.
 */
export function* selectSteps(
  steps: Step[],
  prefix: string,
  selection: { from?: string; tags?: string[]; handler: boolean },
  guardsOnly = false,
): Generator<SelectedStep> {
  // Handlers are not passed by --from: they run because steps that ran notified them.
  const from = selection.handler ? undefined : selection.from;
  const tags = selection.tags;
  let reachedFrom = !from || !from.startsWith(prefix);
  for (const [index, step] of steps.entries()) {
    const id = prefix + step.id;
    if (!reachedFrom && id === from) reachedFrom = true;
    const fromInside = !reachedFrom && step.include !== undefined && step.loop === undefined && from!.startsWith(`${id}/`);
    const passedBy = guardsOnly || (!reachedFrom && !fromInside) || !tagsMatch(step, tags);
    if (fromInside) reachedFrom = true;
    yield { step, index, id, passedBy, fromInside };
  }
}

/** Whether --tags selects the step: no --tags, a step tagged `always`, or one of its tags named. */
export function tagsMatch(step: Step, tags: string[] | undefined): boolean {
  if (!tags?.length) return true;
  const own = step.tags ?? [];
  return own.includes('always') || own.some((t) => tags.includes(t));
}

/**
 * The tags --tags can select by: those of the playbook's steps and handlers, and those inside a
 * playbook included (by a fixed path) from a step tagged `always`: an include step that --tags does
 * not select is not entered, whatever its steps are tagged.
 */
/** An included playbook's own includes are relative to it, as the run resolves them (include.ts). */
async function tagsOf(playbook: Playbook, dir: string, loadInclude: (file: string, fromDir: string) => Promise<Playbook>, seen: Set<string>): Promise<Set<string>> {
  const tags = new Set<string>();
  const steps: Array<Partial<Step>> = [...playbook.steps, ...Object.values(playbook.handlers ?? {})];
  for (const step of steps) {
    for (const t of step.tags ?? []) if (t !== 'always') tags.add(t);
    const file = (step.include as IncludeInput | undefined)?.playbook;
    if (!step.tags?.includes('always') || typeof file !== 'string' || isTemplated(file)) continue;
    const path = resolve(dir, file);
    if (seen.has(path)) continue;
    seen.add(path);
    for (const t of await tagsOf(await loadInclude(file, dir), dirname(path), loadInclude, seen)) tags.add(t);
  }
  return tags;
}

/**
 * Whether --from names a step: one of the playbook's, or `<include-id>/<step>` inside a playbook an
 * include step (not looped) includes by a fixed path, at any depth (the backup tools' steps live in
 * include/backup/<tool>/, and a run can start at one of them as at a step of the procedure itself).
 */
export async function hasStep(playbook: Playbook, dir: string, id: string, loadInclude: (file: string, fromDir: string) => Promise<Playbook>): Promise<boolean> {
  if (playbook.steps.some((s) => s.id === id)) return true;
  const slash = id.indexOf('/');
  if (slash < 0) return false;
  const step = playbook.steps.find((s) => s.id === id.slice(0, slash) && s.loop === undefined);
  const file = (step?.include as IncludeInput | undefined)?.playbook;
  if (typeof file !== 'string' || isTemplated(file)) return false;
  return hasStep(await loadInclude(file, dir), dirname(resolve(dir, file)), id.slice(slash + 1), loadInclude);
}
