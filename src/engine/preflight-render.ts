import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { ValueNotRead } from '../core/not-read.js';
import { handlebarsCompiler } from '../render/handlebars-lib.js';
import { findPrecompiledRefs } from '../render/precompiled.js';
import { evaluateCondition, referencedNames, referencedSegments } from '../expr/index.js';
import { resolveParams } from '../load/params.js';
import type { IncludeInput, Step } from '../model/playbook.js';
import type { Action, RoleChange } from './action.js';
import { hostsStepMayRunOn, isGuard } from './guards.js';
import { validateRenderedInput } from './input.js';
import { loopItems } from './loop.js';
import { rescueStepOf } from './rescue.js';
import type { RunContext } from './run-context.js';
import { selectSteps } from './selection.js';
import { globalScope, hostScope, type ScopeSources } from './scope.js';
import { CHANGEABLE_FACT_KEYS, type HostFacts } from '../model/facts.js';
import { templateRefs, type TemplateRefs } from './template-refs.js';

type HostSelector = (pattern: string | string[]) => string[];

/**
 * Before the run's first step that may change something (under plan too; schedule.ts: mayChangeFirst; a
 * guard that only reads runs before it and refuses with its own message; a fence does not): every step
 * that may run is rendered, on each of its
 * hosts, as far as what is known up front allows (params, vars, inventory, hosts and the facts read at
 * the start), its rendered input validated (schema and the action's validateInput), and every template
 * it names (Action.templates) found and rendered. A step that cannot be refuses the run, exit 2, naming
 * step, host and what is wrong, before anything changed: a DR procedure that stops a primary and then
 * cannot render the step that restores it leaves the host down.
 *
 * What cannot be known up front is decided by declarations, not guessed:
 * - A value reading a name some earlier step declares with `register:` (or any `registered` data, or an
 *   include param rendered from one, or the item of a loop over one) exists only at run time: it is
 *   checked for structure only (every name it reads is the step context's or an earlier step's register).
 * - A `when` that cannot be evaluated yet (it reads a register) counts as true; one that can is decided
 *   with the facts read at the start.
 * - A value reading facts that fails with the start's facts is left to run time: the steps before it
 *   change those facts (a restore makes the system identifier a fresh PGDATA lacks).
 */
export async function preflightRender(run: RunContext, selectHosts: HostSelector, involved: string[], top: TopState): Promise<{ roleChange?: RoleChange }> {
  const walker = new Walker(run, selectHosts, involved, false);
  await walk(walker, run, top);
  const count = walker.problems.length;
  if (count === 0) return { roleChange: walker.roleChange };
  throw refusal(
    walker.problems,
    'RENDER',
    `the run cannot be carried out: ${count === 1 ? 'a step' : `${count} steps`} cannot take ${count === 1 ? 'its' : 'their'} input; nothing was changed`,
    'every step is rendered before the first change, so that a procedure never stops halfway on a value it could not use: correct the value named',
  );
}

/**
 * Under --limit, before the run's first step (guards included: a fence outside the limit runs, and
 * changes something): refuses (exit 2) a limit that leaves out a step whose register a step that runs
 * reads (switchover.yml --limit <candidate> would stop the primary, then miss what the step left out on
 * it registered, and stop half-way). Walks the steps as the pre-flight does, deciding only which run.
 */
export async function preflightLimit(run: RunContext, selectHosts: HostSelector, involved: string[], top: TopState): Promise<void> {
  const limit = run.options.limit;
  if (!limit) return;
  const walker = new Walker(run, selectHosts, involved, true);
  await walk(walker, run, top);
  if (walker.problems.length === 0) return;
  throw refusal(
    walker.problems,
    'USAGE',
    `--limit ${limit.join(',')} leaves out what the steps that run need; nothing was changed`,
    'a procedure runs whole: widen --limit to the hosts of the steps named, or run without it',
  );
}

/** The error refusing the run for `problems` (the first one's step, host and expected), listed under `headline`. */
function refusal(problems: Problem[], code: 'RENDER' | 'USAGE', headline: string, hint: string): PgplayError {
  const [first] = problems;
  return new PgplayError({
    code,
    message: `${headline}:\n${problems.map((p) => `step ${p.step}${p.host === INCLUDE_LEVEL ? '' : ` on ${p.host}`}: ${p.message}`).join('\n')}`,
    step: first!.step,
    ...(first!.host === INCLUDE_LEVEL ? {} : { host: first!.host }),
    expected: first!.expected,
    hint,
  });
}

/** The walker over the top playbook's steps, then its handlers, with the top playbook's params, vars and directory. */
async function walk(walker: Walker, run: RunContext, top: TopState): Promise<void> {
  const saved = { params: run.params, vars: run.vars, dir: run.playbookDir };
  try {
    run.params = top.params;
    run.vars = top.vars;
    run.playbookDir = top.dir;
    await walker.steps(run.playbook.steps, '', { registers: new Set(), runtimeParams: new Set() });
    const handlers = Object.entries(run.playbook.handlers ?? {}).map(([id, h]) => ({ ...h, id }) as Step);
    await walker.steps(handlers, 'handler:', walker.frame!);
  } finally {
    run.params = saved.params;
    run.vars = saved.vars;
    run.playbookDir = saved.dir;
  }
}

/** The "host" of a problem of an include step itself (its params, its when): it runs on no host. */
const INCLUDE_LEVEL = '';

/** The top playbook's params, vars and directory (the hook may run inside an include, whose own are set then). */
export interface TopState {
  params: Record<string, unknown>;
  vars: Record<string, unknown>;
  dir: string;
}

interface Frame {
  /** Names earlier steps register (so far in the walk), and those a resumed run brought. */
  registers: Set<string>;
  /** The include params of this frame rendered from registered values: known only at run time. */
  runtimeParams: Set<string>;
  /** A loop's item is known only at run time (the loop reads a register). */
  runtimeItem?: boolean;
  /** The hosts of steps that name none (an include's), when known. */
  inherited?: Step['hosts'];
}

interface Problem {
  step: string;
  host: string;
  message: string;
  expected?: string;
}

/** The names every step's context holds (engine/scope.ts), besides the registered ones. */
const SCOPE_NAMES = new Set(['params', 'vars', 'inventory', 'hosts', 'host', 'facts', 'registered', 'this']);

class Walker {
  readonly problems: Problem[] = [];
  /**
   * The most a step that may run can do to which server runs read-write (Action.changesRole): 'promotes'
   * over 'starts'; an input not rendered now whose action can change a role counts as a promotion.
   */
  roleChange?: RoleChange;

  private noteRoleChange(change: RoleChange | false | undefined): void {
    if (change === 'promotes' || (change === 'starts' && this.roleChange === undefined)) this.roleChange = change;
  }
  frame?: Frame;
  private readonly seen = new Set<string>();
  /** Whether some include's steps could not be read (its file named by a template): their registers are unknown. */
  private registersIncomplete = false;
  /** Names registered before the hook ran (by the guards, or a resumed run): their values exist. */
  private readonly known: Set<string>;
  /**
   * Under --limit: the registers of steps it leaves out on every host they would run on, by name, with
   * that step and those hosts (until a step that runs registers the name again). A step that runs and
   * reads one would stop the run half-way, perhaps after a guard outside the limit changed something.
   */
  private readonly limitedAway = new Map<string, { step: string; hosts: string[] }>();

  constructor(
    private readonly run: RunContext,
    private readonly selectHosts: HostSelector,
    private readonly involved: string[],
    /** Only --limit's problems (preflightLimit): which steps run and what they read, nothing rendered beyond that. */
    private readonly limitOnly: boolean,
  ) {
    this.known = new Set(Object.values(run.registered).flatMap(Object.keys));
  }

  /** The steps the run reaches, as the scheduler selects them (selection.ts); guardsOnly: an include passed by. */
  async steps(steps: Step[], prefix: string, frame: Frame, guardsOnly = false): Promise<void> {
    this.frame = frame;
    const selection = { from: this.run.options.from, tags: this.run.options.tags, handler: prefix.startsWith('handler:') };
    for (const { step, id, passedBy } of selectSteps(steps, prefix, selection, guardsOnly)) {
      const withHosts = step.hosts === undefined && frame.inherited !== undefined ? { ...step, hosts: frame.inherited } : step;
      // As the scheduler: an include is entered (only for its guards when passed by); of the other steps a
      // guard always runs, the rest unless passed by.
      if (step.include !== undefined) {
        // A section's rescue (rescue.ts) runs when the section fails, its steps as guards: it is checked
        // as well, since it is what puts a stopped primary back.
        if ((await this.include(withHosts, id, frame, passedBy)) && step.rescue !== undefined) {
          await this.include(rescueStepOf(withHosts), `${id}/rescue`, frame, false, true);
        }
      } else if (!passedBy || isGuard(step)) await this.action(withHosts, id, frame);
      if (step.register) frame.registers.add(step.register);
    }
  }

  /** What a value depends on that only the run can know: undefined when it can be rendered now. */
  private runtimeDependency(refs: TemplateRefs, frame: Frame): string | undefined {
    // A name the steps before the hook registered already (the guards) is known: its value is rendered.
    for (const name of [...refs.roots, ...refs.literalHeads]) if (frame.registers.has(name) && !this.known.has(name)) return `the register ${name}`;
    if (refs.segments.has('registered') && [...frame.registers].some((r) => !this.known.has(r))) return 'registered values';
    for (const p of refs.params) if (frame.runtimeParams.has(p)) return `params.${p} (rendered from a register)`;
    if (frame.runtimeItem && (refs.roots.has('item') || refs.roots.has('item_index'))) return 'the item of a loop over a register';
    return undefined;
  }

  /** Names a value reads that neither a step's context nor an earlier register provides. */
  private unknownNames(refs: TemplateRefs, frame: Frame, looped: boolean): string[] {
    return [...refs.roots].filter(
      (name) => !SCOPE_NAMES.has(name) && !frame.registers.has(name) && !(looped && (name === 'item' || name === 'item_index')),
    );
  }

  private note(step: string, host: string, e: unknown, expected?: string, kind: 'render' | 'limit' = 'render'): void {
    // The render's problems are the pre-flight's, reported after the guards with their own messages.
    if (this.limitOnly && kind !== 'limit') return;
    const key = `${step}@${host}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const error = e instanceof PgplayError ? e : undefined;
    this.problems.push({ step, host, message: error?.message ?? (e as Error)?.message ?? String(e), expected: expected ?? error?.expected });
  }

  /** The step's hosts, when they can be known now (else undefined: the step is checked for structure only). */
  private async hostsOf(step: Step, id: string, frame: Frame): Promise<string[] | undefined> {
    const all = hostsStepMayRunOn(this.run, step, this.involved);
    return (await this.renderedHosts(step, id, frame))?.filter((h) => all.includes(h));
  }

  /** The hosts the step's `hosts` names, --limit aside; undefined when they cannot be known now. */
  private async renderedHosts(step: Step, id: string, frame: Frame): Promise<string[] | undefined> {
    // Inside an include whose hosts are known only at run time.
    if (step.hosts === undefined) return undefined;
    if (this.runtimeDependency(templateRefs(step.hosts), frame)) return undefined;
    try {
      // As the scheduler's targetHosts: the rendered pattern, within the hosts steps may run on.
      const pattern = await this.run.withFacts(() => this.run.renderer.renderValue(step.hosts, globalScope(this.run.scopeSources()), `step ${id} hosts`));
      return this.selectHosts(pattern as string | string[]);
    } catch (e) {
      // Hosts chosen by facts (which steps change) are decided when the step comes.
      if (readsFacts(templateRefs(step.hosts))) return undefined;
      this.note(id, String(step.hosts), e);
      return [];
    }
  }

  /**
   * Under --limit, the step `id` (which runs on `hosts`, or on hosts known only at run time) against the
   * registers the limit leaves out: reading one is a problem; registering one gives the name back.
   */
  private async limitedRegisters(step: Step, id: string, hosts: string[] | undefined, frame: Frame): Promise<void> {
    const limit = this.run.options.limit;
    if (!limit) return;
    const runs = hosts === undefined || hosts.length > 0 || isGuard(step);
    if (runs) {
      const read = readNames(step);
      for (const [name, away] of this.limitedAway) {
        // Its own register a step reads on the hosts it runs on; another host's (hosts.<h>.registered), on any.
        const own = read.own.has(name) && (hosts === undefined || hosts.some((h) => away.hosts.includes(h)));
        if (!own && !read.others.has(name)) continue;
        const wanted = [...limit, ...away.hosts.filter((h) => !limit.includes(h))].join(',');
        this.note(
          id,
          hosts?.join(',') ?? INCLUDE_LEVEL,
          new PgplayError({
            code: 'USAGE',
            message: `it reads ${name}, which step ${away.step} registers on ${away.hosts.join(', ')}; --limit ${limit.join(',')} leaves that step out`,
            expected: `--limit ${wanted}, or no --limit`,
          }),
          undefined,
          'limit',
        );
      }
    }
    if (!step.register) return;
    if (runs) {
      this.limitedAway.delete(step.register);
      return;
    }
    const without = await this.renderedHosts(step, id, frame);
    if (without?.length) this.limitedAway.set(step.register, { step: id, hosts: without });
  }

  private structure(value: unknown, id: string, where: string, frame: Frame, looped: boolean): void {
    // An include whose file is named at run time may register anything: names are not judged then.
    if (this.registersIncomplete) return;
    const unknown = this.unknownNames(templateRefs(value), frame, looped);
    if (unknown.length === 0) return;
    this.note(
      id,
      where,
      new PgplayError({
        code: 'RENDER',
        message: `it reads ${unknown.map((n) => `"${n}"`).join(', ')}, which no step before it registers and the step's context does not hold`,
        expected: `params, vars, inventory, hosts, host, facts, or a name an earlier step registers (${[...frame.registers].join(', ') || 'none'})`,
      }),
    );
  }

  private async action(step: Step, id: string, frame: Frame): Promise<void> {
    const { action, input } = this.run.actionOf(step);
    const hosts = await this.hostsOf(step, id, frame);
    await this.limitedRegisters(step, id, hosts, frame);
    if (this.limitOnly) return;
    const looped = step.loop !== undefined;
    // An input known only at run time may change a role if its action can.
    const unrendered = () => this.noteRoleChange(action.changesRole && 'promotes');
    if (!hosts) {
      unrendered();
      return this.structure(input, id, String(step.hosts), frame, looped);
    }
    const inputRefs = templateRefs(input);
    const runtime = this.runtimeDependency(inputRefs, frame);
    for (const host of hosts) {
      if (runtime) {
        unrendered();
        this.structure(input, id, host, frame, looped);
        continue;
      }
      for (const extra of await this.loopExtras(step, id, host, frame)) {
        if (extra === undefined) {
          unrendered();
          this.structure(input, id, host, frame, looped);
          continue;
        }
        if (!(await this.decided(step.when, (src) => hostScope(src, host, extra), id, host, frame))) continue;
        await this.renderInput(action, input, inputRefs, id, host, extra, frame);
      }
    }
  }

  /** The scopes a step's loop gives on a host: [{}] without a loop, [undefined] when its items are known only at run time. */
  private async loopExtras(step: Step, id: string, host: string, frame: Frame): Promise<Array<Record<string, unknown> | undefined>> {
    if (step.loop === undefined) return [{}];
    if (this.runtimeDependency(templateRefs(step.loop), frame)) return [undefined];
    try {
      return (await this.run.withFacts(() => loopItems(this.run, step, host))).map((item, index) => ({ item, item_index: index }));
    } catch (e) {
      if (!readsFacts(templateRefs(step.loop))) this.note(id, host, e);
      return [];
    }
  }

  /**
   * A `when` decided now. One that cannot be evaluated yet because it reads a register, registered values,
   * a param known only at run time or facts (which steps change) may hold: true; so may one false now
   * because of a fact a step can change (model/facts.ts: CHANGEABLE_FACT_KEYS). One that fails for another
   * reason would fail the same when the step comes: a problem (and the step is not checked further).
   */
  private async decided(when: Step['when'], scope: (src: ScopeSources) => Record<string, unknown>, id: string, host: string, frame: Frame): Promise<boolean> {
    if (when === undefined) return true;
    const words = new Set(String(when).match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
    try {
      if (await this.run.withFacts(() => evaluateCondition(when, scope(this.run.scopeSources())))) return true;
      // False now: decided only if it is false whatever the facts the steps before it may change (a start
      // makes facts.running true); one that reads such a fact to be false may hold then.
      return words.has('facts') && dependsOnChangeableFacts(() => evaluateCondition(when, scope(unsettled(this.run.scopeSources()))));
    } catch (e) {
      const runtime =
        words.has('facts') || words.has('registered') || [...words].some((w) => frame.registers.has(w) || frame.runtimeParams.has(w)) || (frame.runtimeItem === true && words.has('item'));
      if (!runtime) this.note(id, host, new PgplayError({ code: 'RENDER', message: `its when cannot be evaluated: ${(e as Error).message}` }));
      return runtime;
    }
  }

  private async renderInput(
    action: Action<any>,
    input: unknown,
    refs: TemplateRefs,
    id: string,
    host: string,
    extra: Record<string, unknown>,
    frame: Frame,
  ): Promise<void> {
    // Facts change as steps run (a stop, a restore): a value reading them that fails now is left to run time;
    // so is one reading a register the guards set, on a host they may not have set it for (a later step may).
    const tolerated = readsFacts(refs) || [...refs.roots, ...refs.literalHeads].some((n) => frame.registers.has(n)) || refs.segments.has('registered');
    let rendered: Record<string, unknown>;
    try {
      rendered = validateRenderedInput(action, await this.run.withFacts(() => this.run.renderer.renderValue(input, hostScope(this.run.scopeSources(), host, extra), `step ${id}`)));
      action.validateInput?.(rendered, { host: this.run.hosts[host]!, hosts: this.run.hosts, inventory: this.run.inventory });
    } catch (e) {
      if (!tolerated) this.note(id, host, e);
      else this.noteRoleChange(action.changesRole && 'promotes');
      return;
    }
    this.noteRoleChange(action.changesRole?.(rendered));
    for (const template of action.templates?.(rendered) ?? []) await this.template(template, id, host, { ...extra, ...(template.vars ?? {}) }, frame);
  }

  private async template(template: { src: string }, id: string, host: string, extra: Record<string, unknown>, frame: Frame): Promise<void> {
    const file = await this.run.renderer.resolveTemplate(template.src);
    if (!file) {
      // The same error the step would meet when it renders.
      try {
        await this.run.renderer.renderFile(template.src, {});
      } catch (e) {
        this.note(id, host, e);
      }
      return;
    }
    const text = await readFile(file, 'utf8');
    const refs = templateRefs(text);
    // Its own secrets are resolved only when it renders, a register once the step before runs: then it is only compiled.
    if (this.runtimeDependency(refs, frame) || refs.roots.has('secrets')) {
      // A shipped template the build precompiled compiles (the build keeps only those): no parser to load.
      if (findPrecompiledRefs(text)) return;
      try {
        handlebarsCompiler().parse(text);
      } catch (e) {
        this.note(id, host, new PgplayError({ code: 'RENDER', message: `template ${template.src} does not compile: ${(e as Error).message}` }));
      }
      return;
    }
    try {
      await this.run.withFacts(() => this.run.renderer.renderFile(file, hostScope(this.run.scopeSources(), host, extra)));
    } catch (e) {
      if (!readsFacts(refs)) this.note(id, host, e);
    }
  }

  /**
   * An include step, as runInclude enters it: once, or once per item of its loop (each item with its own
   * `when`, params and hosts, as the run renders them); `asGuards`: a section's rescue, whose steps run as
   * guards. Returns whether it may be entered (its `when` does not rule it out, its file is known).
   */
  private async include(step: Step, id: string, frame: Frame, guardsOnly: boolean, asGuards = false): Promise<boolean> {
    const scope = (src = this.run.scopeSources()) => globalScope(src);
    const loopRuntime = step.loop !== undefined && this.runtimeDependency(templateRefs(step.loop), frame) !== undefined;
    // An include runs nowhere itself: what its when, params and hosts read is read wherever its steps run.
    await this.limitedRegisters({ ...step, register: undefined }, id, undefined, frame);
    if (step.loop === undefined && !(await this.decided(step.when, scope, id, INCLUDE_LEVEL, frame))) {
      // Not entered: its registers are still declared (a later step may read them behind a `when`).
      await this.declareRegisters(step, id);
      return false;
    }
    const raw = step.include as IncludeInput;
    if (typeof raw.playbook !== 'string' || raw.playbook.includes('{{')) {
      this.registersIncomplete = true;
      return false;
    }
    const hostsRuntime = this.runtimeDependency(templateRefs(step.hosts), frame) !== undefined;
    const inherited = step.hosts === undefined || hostsRuntime ? undefined : ((await this.renderOr(id, step.hosts, scope)) as Step['hosts']);
    // A looped include's items, as the run lists them (on each of the include's hosts); undefined: known only at run time.
    let items: Array<Record<string, unknown> | undefined> = [{}];
    if (step.loop !== undefined && !loopRuntime) {
      const hosts = step.hosts !== undefined ? await this.hostsOf(step, id, frame) : undefined;
      items = hosts ? (await Promise.all(hosts.map((h) => this.loopExtras(step, id, h, frame)))).flat() : [undefined];
    } else if (loopRuntime) items = [undefined];
    let entered = false;
    for (const extra of items) {
      const itemScope = (src: ScopeSources) => ({ ...scope(src), ...(extra ?? {}) });
      // Each item's when, with its item (the run's enter()); one known only at run time may hold.
      if (step.loop !== undefined && extra !== undefined && !(await this.decided(step.when, itemScope, id, INCLUDE_LEVEL, frame))) continue;
      entered = true;
      const childFrame: Frame = { registers: frame.registers, runtimeParams: new Set(), runtimeItem: frame.runtimeItem || extra === undefined, inherited };
      await this.enter(step, raw, id, frame, childFrame, extra ?? {}, guardsOnly, asGuards);
    }
    if (!entered) await this.declareRegisters(step, id);
    return entered;
  }

  /** One entry into an included playbook: its params rendered (with `extra`, a loop's item), then its steps walked. */
  private async enter(step: Step, raw: IncludeInput, id: string, frame: Frame, childFrame: Frame, extra: Record<string, unknown>, guardsOnly: boolean, asGuards: boolean): Promise<void> {
    const run = this.run;
    const scope = () => ({ ...globalScope(run.scopeSources()), ...extra });
    const given: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw.params ?? {})) {
      const valueRefs = templateRefs(value);
      if (this.runtimeDependency(valueRefs, { ...frame, runtimeItem: childFrame.runtimeItem })) {
        childFrame.runtimeParams.add(name);
        continue;
      }
      const rendered = await this.renderOr(id, value, scope);
      if (rendered === undefined) return;
      given[name] = String(rendered);
    }
    let child;
    try {
      child = await run.deps.loadInclude!(raw.playbook, run.playbookDir);
    } catch (e) {
      this.note(id, INCLUDE_LEVEL, e);
      return;
    }
    // Passed by: entered only for the guards it holds, as the scheduler does (include.ts); what it registers is declared.
    if (guardsOnly && !child.steps.some(isGuard)) return this.declareRegisters(step, id);
    const steps = asGuards ? child.steps.map((s) => ({ ...s, guard: true })) : child.steps;
    const saved = { params: run.params, vars: run.vars, dir: run.playbookDir };
    try {
      // A param known only at run time takes its default now (or a stand-in): no value of it is rendered.
      const stand = Object.fromEntries([...childFrame.runtimeParams].map((p) => [p, standIn(child.params?.[p])]));
      try {
        run.params = resolveParams(child.params, { ...stand, ...given });
      } catch (e) {
        // A stand-in may not fit what the param takes: the include is then checked when it runs.
        if (childFrame.runtimeParams.size === 0) this.note(id, INCLUDE_LEVEL, e);
        return;
      }
      run.playbookDir = dirname(resolve(saved.dir, raw.playbook));
      if (child.vars) {
        if (this.runtimeDependency(templateRefs(child.vars), childFrame)) return;
        const childVars = child.vars;
        run.vars = { ...saved.vars, ...(await run.withFacts(() => run.renderer.renderValue(childVars, globalScope(run.scopeSources()), `${id}: vars`) as Record<string, unknown>)) };
      }
      await this.steps(steps, `${id}/`, childFrame, guardsOnly);
    } catch (e) {
      this.note(id, INCLUDE_LEVEL, e);
    } finally {
      run.params = saved.params;
      run.vars = saved.vars;
      run.playbookDir = saved.dir;
      this.frame = frame;
    }
  }

  /** An include not entered now: the names its steps register, as far as its file can be found. */
  private async declareRegisters(step: Step, _id: string): Promise<void> {
    const raw = step.include as IncludeInput;
    if (typeof raw.playbook !== 'string' || raw.playbook.includes('{{') || !this.run.deps.loadInclude) {
      this.registersIncomplete = true;
      return;
    }
    try {
      const child = await this.run.deps.loadInclude(raw.playbook, this.run.playbookDir);
      const dir = dirname(resolve(this.run.playbookDir, raw.playbook));
      const saved = this.run.playbookDir;
      this.run.playbookDir = dir;
      try {
        for (const s of child.steps) {
          if (s.register) this.frame!.registers.add(s.register);
          if (s.include !== undefined) await this.declareRegisters(s, _id);
        }
      } finally {
        this.run.playbookDir = saved;
      }
    } catch {
      // The include is not entered: its own errors are for when it is; what it registers is unknown.
      this.registersIncomplete = true;
    }
  }

  private async renderOr(id: string, value: unknown, scope: () => Record<string, unknown>): Promise<unknown> {
    try {
      return await this.run.withFacts(() => this.run.renderer.renderValue(value, scope(), `step ${id}`));
    } catch (e) {
      if (!readsFacts(templateRefs(value))) this.note(id, INCLUDE_LEVEL, e);
      return undefined;
    }
  }
}

/** A value for a param known only at run time, for the params of an include to resolve now (it is never rendered into anything checked). */
function standIn(def: { default?: unknown; enum?: unknown[] } | undefined): string {
  if (def?.default !== undefined) return String(def.default);
  if (def?.enum?.length) return String(def.enum[0]);
  return '';
}

/** Thrown where a value reads a fact a step can change, in unsettled() sources (let through as a value not read). */
class UnsettledFact extends ValueNotRead {}

/**
 * `src` with every host's changeable facts (CHANGEABLE_FACT_KEYS, absent ones too: a stopped server has no
 * in_recovery) unknown: reading one throws UnsettledFact; the other facts are as read.
 */
function unsettled(src: ScopeSources): ScopeSources {
  const facts: Record<string, HostFacts> = {};
  for (const [name, read] of Object.entries(src.facts)) {
    const view = Object.fromEntries(Object.entries(read).filter(([key]) => !CHANGEABLE_FACT_KEYS.has(key)));
    for (const key of CHANGEABLE_FACT_KEYS) {
      Object.defineProperty(view, key, {
        enumerable: true,
        get: () => {
          throw new UnsettledFact(`${name}: facts.${key} may change before the step`);
        },
      });
    }
    facts[name] = view as unknown as HostFacts;
  }
  return { ...src, facts };
}

/** Whether `evaluate` needs a fact a step can change (or one not read yet) to decide. */
function dependsOnChangeableFacts(evaluate: () => unknown): boolean {
  try {
    evaluate();
    return false;
  } catch {
    return true;
  }
}

function readsFacts(refs: TemplateRefs): boolean {
  return refs.segments.has('facts');
}

/** The step's fields that are expressions (no braces): when, until, assert's that, command's changed_when and failed_when. */
function expressionsOf(step: Step): unknown[] {
  const input = (key: string) => (step as unknown as Record<string, Record<string, unknown> | undefined>)[key];
  return [step.when, step.until, input('assert')?.that, input('command')?.changed_when, input('command')?.failed_when].flat();
}

/**
 * The names a step's templates and expressions read that may be registers: `own`, those read at the top
 * (the step's host's own registers: {{state.rows}}, `state.changed`), and `others`, every name of a
 * path through `registered` (another host's: hosts[h].registered.state, lookup ... 'registered').
 */
function readNames(step: Step): { own: Set<string>; others: Set<string> } {
  const refs = templateRefs(step);
  const own = new Set([...refs.roots, ...refs.literalHeads]);
  const others = new Set(refs.segments.has('registered') ? refs.segments : []);
  for (const expr of expressionsOf(step)) {
    if (typeof expr !== 'string') continue;
    try {
      for (const name of referencedNames(expr)) own.add(name);
      const segments = referencedSegments(expr);
      if (segments.includes('registered')) for (const name of segments) others.add(name);
    } catch {
      // An expression that does not parse is the loader's error, reported there.
    }
  }
  return { own, others };
}

