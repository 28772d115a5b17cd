import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { handlebarsCompiler } from '../render/handlebars-lib.js';
import { findPrecompiledRefs } from '../render/precompiled.js';
import { evaluateCondition } from '../expr/index.js';
import { resolveParams } from '../load/params.js';
import type { IncludeInput, Step } from '../model/playbook.js';
import type { Action } from './action.js';
import { isGuard } from './guards.js';
import { validateRenderedInput } from './input.js';
import { loopItems } from './loop.js';
import type { RunContext } from './run-context.js';
import { selectSteps } from './selection.js';
import { globalScope, hostScope } from './scope.js';
import { templateRefs, type TemplateRefs } from './template-refs.js';

type HostSelector = (pattern: string | string[]) => string[];

/**
 * Before the run's first step that is not a guard (under plan too; guards only read, and refuse with their
 * own message first): every step that may run is rendered, on each of its
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
export async function preflightRender(run: RunContext, selectHosts: HostSelector, involved: string[], top: TopState): Promise<void> {
  const walker = new Walker(run, selectHosts, involved);
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
  if (walker.problems.length === 0) return;
  const [first] = walker.problems;
  throw new PgplayError({
    code: 'RENDER',
    message:
      `the run cannot be carried out: ${walker.problems.length === 1 ? 'a step' : `${walker.problems.length} steps`} cannot take ${walker.problems.length === 1 ? 'its' : 'their'} input; nothing was changed:\n` +
      walker.problems.map((p) => `step ${p.step}${p.host === INCLUDE_LEVEL ? '' : ` on ${p.host}`}: ${p.message}`).join('\n'),
    step: first!.step,
    ...(first!.host === INCLUDE_LEVEL ? {} : { host: first!.host }),
    expected: first!.expected,
    hint: 'every step is rendered before the first change, so that a procedure never stops halfway on a value it could not use: correct the value named',
  });
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
  frame?: Frame;
  private readonly seen = new Set<string>();
  /** Whether some include's steps could not be read (its file named by a template): their registers are unknown. */
  private registersIncomplete = false;
  /** Names registered before the hook ran (by the guards, or a resumed run): their values exist. */
  private readonly known: Set<string>;

  constructor(
    private readonly run: RunContext,
    private readonly selectHosts: HostSelector,
    private readonly involved: string[],
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
      if (step.include !== undefined) await this.include(withHosts, id, frame, passedBy);
      else if (!passedBy || isGuard(step)) await this.action(withHosts, id, frame);
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

  private note(step: string, host: string, e: unknown, expected?: string): void {
    const key = `${step}@${host}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const error = e instanceof PgplayError ? e : undefined;
    this.problems.push({ step, host, message: error?.message ?? (e as Error)?.message ?? String(e), expected: expected ?? error?.expected });
  }

  /** The step's hosts, when they can be known now (else undefined: the step is checked for structure only). */
  private async hostsOf(step: Step, id: string, frame: Frame): Promise<string[] | undefined> {
    // Inside an include whose hosts are known only at run time.
    if (step.hosts === undefined) return undefined;
    if (this.runtimeDependency(templateRefs(step.hosts), frame)) return undefined;
    const all = isGuard(step) ? Object.keys(this.run.hosts) : this.involved;
    try {
      // As the scheduler's targetHosts: the rendered pattern, within the hosts steps may run on.
      const pattern = await this.run.withFacts(() => this.run.renderer.renderValue(step.hosts, globalScope(this.run.scopeSources()), `step ${id} hosts`));
      return this.selectHosts(pattern as string | string[]).filter((h) => all.includes(h));
    } catch (e) {
      // Hosts chosen by facts (which steps change) are decided when the step comes.
      if (readsFacts(templateRefs(step.hosts))) return undefined;
      this.note(id, String(step.hosts), e);
      return [];
    }
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
    const looped = step.loop !== undefined;
    if (!hosts) return this.structure(input, id, String(step.hosts), frame, looped);
    const inputRefs = templateRefs(input);
    const runtime = this.runtimeDependency(inputRefs, frame);
    for (const host of hosts) {
      if (runtime) {
        this.structure(input, id, host, frame, looped);
        continue;
      }
      for (const extra of await this.loopExtras(step, id, host, frame)) {
        if (extra === undefined) {
          this.structure(input, id, host, frame, looped);
          continue;
        }
        if (!(await this.decided(step.when, () => hostScope(this.run.scopeSources(), host, extra), id, host, frame))) continue;
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
   * a param known only at run time or facts (which steps change) may hold: true. One that fails for
   * another reason would fail the same when the step comes: a problem (and the step is not checked further).
   */
  private async decided(when: Step['when'], scope: () => Record<string, unknown>, id: string, host: string, frame: Frame): Promise<boolean> {
    if (when === undefined) return true;
    try {
      return await this.run.withFacts(() => evaluateCondition(when, scope()));
    } catch (e) {
      const words = new Set(String(when).match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
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
      return;
    }
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

  private async include(step: Step, id: string, frame: Frame, guardsOnly: boolean): Promise<void> {
    const run = this.run;
    const scope = () => globalScope(run.scopeSources());
    const loopRuntime = step.loop !== undefined && this.runtimeDependency(templateRefs(step.loop), frame) !== undefined;
    if (step.loop === undefined && !(await this.decided(step.when, scope, id, INCLUDE_LEVEL, frame))) {
      // Not entered: its registers are still declared (a later step may read them behind a `when`).
      await this.declareRegisters(step, id);
      return;
    }
    const raw = step.include as IncludeInput;
    if (typeof raw.playbook !== 'string' || raw.playbook.includes('{{')) {
      this.registersIncomplete = true;
      return;
    }
    const hostsRuntime = this.runtimeDependency(templateRefs(step.hosts), frame) !== undefined;
    const childFrame: Frame = {
      registers: frame.registers,
      runtimeParams: new Set(),
      runtimeItem: frame.runtimeItem || loopRuntime,
      inherited: step.hosts === undefined || hostsRuntime ? undefined : ((await this.renderOr(id, step.hosts, scope)) as Step['hosts']),
    };
    // A looped include's params may read its item: checked once with the first item known now.
    let extra: Record<string, unknown> = {};
    if (step.loop !== undefined && !loopRuntime) {
      const host = step.hosts !== undefined ? (await this.hostsOf(step, id, frame))?.[0] : undefined;
      const items = host ? await this.loopExtras(step, id, host, frame) : [undefined];
      if (items.length === 0) return;
      if (items[0] === undefined) childFrame.runtimeItem = true;
      else extra = items[0];
    }
    const given: Record<string, string> = {};
    for (const [name, value] of Object.entries(raw.params ?? {})) {
      const valueRefs = templateRefs(value);
      if (this.runtimeDependency(valueRefs, { ...frame, runtimeItem: childFrame.runtimeItem })) {
        childFrame.runtimeParams.add(name);
        continue;
      }
      const rendered = await this.renderOr(id, value, () => ({ ...scope(), ...extra }));
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
      await this.steps(child.steps, `${id}/`, childFrame, guardsOnly);
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

function readsFacts(refs: TemplateRefs): boolean {
  return refs.segments.has('facts');
}

