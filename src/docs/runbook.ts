/**
 * `pgplay docs`: a playbook as a Markdown runbook a person can follow without pgplay: what it does,
 * its params, what is destructive, and each step with its hosts, action, guards and conditions. With an
 * inventory the hosts each step touches are named; template host patterns and inputs are rendered
 * with the params, vars and inventory where they do not depend on run-time values (facts, registered
 * results), and shown as written otherwise. Destructiveness is what the actions declare
 * (`destructive`, `confirmation` on the action interface) and the steps (`confirm`), never guessed.
 */
import { dirname, relative, resolve } from 'node:path';
import { actions, getAction } from '../app/action-catalog.js';
import type { Action } from '../actions/types.js';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { MASK } from '../core/redact.js';
import { globalScope } from '../engine/scope.js';
import { resolveHosts, selectHosts } from '../load/hosts.js';
import { loadInventory } from '../load/inventory.js';
import { resolveParams } from '../load/params.js';
import { loadPlaybook } from '../load/playbook.js';
import type { Host, Inventory } from '../model/inventory.js';
import { INCLUDE_KEY, type ParamDef, type Playbook, type Step } from '../model/playbook.js';
import { createRenderer, type Renderer } from '../render/index.js';

export interface RunbookRequest {
  playbookFile: string;
  inventoryFile?: string;
  params?: Record<string, string>;
  /** Paths in the runbook are shown relative to this directory (stable generated docs). */
  relativeTo?: string;
}

interface Scope {
  renderer: Renderer;
  context: Record<string, unknown> | undefined;
  hosts: Record<string, Host> | undefined;
}

const ACTION_NAMES = new Set(actions.map((a) => a.name));

export async function buildRunbook(request: RunbookRequest): Promise<string> {
  const playbookFile = resolve(request.playbookFile);
  const shown = (file: string) => (request.relativeTo ? relative(request.relativeTo, file) : file);
  const inventory: Inventory | undefined = request.inventoryFile ? (await loadInventory(resolve(request.inventoryFile))).inventory : undefined;
  const { playbook } = await loadPlaybook(playbookFile, { actions, inventory });
  // A required param may stay unset: the runbook then shows what depends on it as written.
  const optional = Object.fromEntries(Object.entries(playbook.params ?? {}).map(([k, d]) => [k, { ...d, required: false }]));
  const params = resolveParams(optional, request.params ?? {});
  const renderer = createRenderer({ templateDirs: [resolve(dirname(playbookFile), 'templates'), dirname(playbookFile), SHIPPED_TEMPLATES] });
  const hosts = inventory ? resolveHosts(inventory) : undefined;
  let context: Record<string, unknown> | undefined;
  if (inventory && hosts) {
    const base = { params, vars: {}, inventory, hosts, facts: {}, registered: {} };
    const vars = tryRender(renderer, { ...(inventory.vars ?? {}), ...(playbook.vars ?? {}) }, globalScope(base)) as Record<string, unknown> | undefined;
    context = globalScope({ ...base, vars: vars ?? {} });
  }
  const scope: Scope = { renderer, context, hosts };

  const out: string[] = [`# ${playbook.name}`, ''];
  if (playbook.description) out.push(playbook.description.trim(), '');
  out.push(`- Playbook: \`${shown(playbookFile)}\``);
  out.push(inventory ? `- Inventory: \`${shown(resolve(request.inventoryFile!))}\` (cluster \`${inventory.cluster}\`)` : '- Inventory: none given; hosts are shown as the playbook names them (`pgplay docs PLAYBOOK -i inventory.yml` names them)');
  const given = Object.entries(request.params ?? {});
  if (given.length) out.push(`- Params given: ${given.map(([k, v]) => `\`${k}=${playbook.params?.[k]?.secret ? MASK : v}\``).join(', ')}`);
  out.push(`- Run: \`pgplay run ${shown(playbookFile)}${inventory ? ` -i ${shown(resolve(request.inventoryFile!))}` : ''}${requiredParams(playbook).map((p) => ` -p ${p}=...`).join('')}\` (\`pgplay plan ...\` first: it changes nothing)`, '');

  out.push('## Parameters', '');
  const defs = Object.entries(playbook.params ?? {});
  if (defs.length === 0) out.push('None.', '');
  else {
    out.push('| name | type | default | allowed | description |', '|---|---|---|---|---|');
    for (const [name, def] of defs) out.push(`| \`${name}\` | ${def.type}${def.secret ? ' (secret)' : ''} | ${defaultOf(def)} | ${allowed(def)} | ${cell(def.description ?? '')} |`);
    out.push('');
  }

  const steps = await flattenSteps(playbook, playbookFile, scope, '');
  const handlers = Object.entries(playbook.handlers ?? {}).map(([name, h]) => describeStep({ ...h, id: name } as Step, scope, '', `handler ${name}`));
  const risky = [...steps, ...handlers].filter((s) => s.destructive.length);
  out.push('## What is destructive', '');
  if (risky.length === 0) out.push('Nothing: no step of this playbook is declared destructive.', '');
  else {
    out.push('Each of these asks for confirmation before it changes anything (`--yes` answers); without a terminal and without `--yes` the run stops there (exit 3).', '');
    for (const s of risky) out.push(`- \`${s.id}\` on ${s.hostsText}: ${s.destructive.join('; ')}`);
    out.push('');
  }

  out.push('## Steps', '', 'In order; a step runs on all its hosts before the next one starts, and a failure stops the run after that step.', '');
  steps.forEach((s, i) => out.push(...s.lines(`${i + 1}.`)));
  if (handlers.length) {
    out.push('## Handlers', '', 'Run once at the end, in this order, on the hosts whose steps notified them and changed something.', '');
    handlers.forEach((h) => out.push(...h.lines('-')));
  }
  // A secret param's value can reach the text through a rendered value (an included playbook's params): never shown.
  // (Only the values: the redactor's shapes, such as password=..., would take the Markdown around them too.)
  const secrets = given.filter(([k, v]) => playbook.params?.[k]?.secret && v !== '').map(([, v]) => v);
  const text = out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
  return secrets.sort((a, b) => b.length - a.length).reduce((t, secret) => t.split(secret).join(MASK), text);
}

interface StepDoc {
  id: string;
  hostsText: string;
  destructive: string[];
  lines(number: string): string[];
}

async function flattenSteps(playbook: Playbook, file: string, scope: Scope, prefix: string, inherited?: Step['hosts']): Promise<StepDoc[]> {
  const docs: StepDoc[] = [];
  for (const step of playbook.steps) {
    const withHosts = step.hosts === undefined && inherited !== undefined ? { ...step, hosts: inherited } : step;
    const doc = describeStep(withHosts, scope, prefix);
    docs.push(doc);
    const include = step[INCLUDE_KEY] as { playbook: string; params?: Record<string, unknown> } | undefined;
    if (include) {
      const included = resolve(dirname(file), include.playbook);
      const { playbook: inner } = await loadPlaybook(included, { actions, included: true });
      // Rendered with the include step's hosts in the includer's scope, as the run does (engine/include.ts).
      const hosts = scope.context && withHosts.hosts !== undefined ? (tryRender(scope.renderer, withHosts.hosts, scope.context) as Step['hosts']) : withHosts.hosts;
      docs.push(...(await flattenSteps(inner, included, { ...scope, context: includedContext(scope, inner, include.params ?? {}) }, `${prefix}${step.id}/`, hosts ?? withHosts.hosts)));
    }
  }
  return docs;
}

function describeStep(step: Step, scope: Scope, prefix: string, heading?: string): StepDoc {
  const id = `${prefix}${step.id}`;
  const actionName = Object.keys(step).find((k) => ACTION_NAMES.has(k) || k === INCLUDE_KEY) ?? '?';
  const action = getAction(actionName) as Action<Record<string, unknown>> | undefined;
  const rawInput = step[actionName] as Record<string, unknown> | undefined;
  const input = rawInput && typeof rawInput === 'object' ? renderEach(scope, rawInput) : rawInput;
  const destructive: string[] = [];
  if (step.confirm) destructive.push(typeof step.confirm === 'string' ? `asks: "${step.confirm.trim()}"` : 'the step asks for confirmation (confirm)');
  if (action && input && action.destructive?.(input)) destructive.push(`${actionName} ${summaryOf(actionName, input)} is destructive`);
  const conditional = action && input ? action.confirmation?.(input) : undefined;
  if (conditional) destructive.push(conditional);
  const pattern = step.hosts;
  const patternText = pattern === undefined ? 'the include step\'s hosts' : (Array.isArray(pattern) ? pattern : [pattern]).map((p) => `\`${p}\``).join(', ');
  const hostNames = hostsOf(scope, pattern);
  const hostsText = hostNames === undefined ? patternText : hostNames.length ? `${patternText} → ${hostNames.join(', ')}` : `${patternText} → no host of this inventory`;
  const lines = (number: string): string[] => {
    const head = heading ?? `\`${id}\``;
    const out = [`${number} **${head}**${step.name ? `: ${step.name}` : ''}`];
    const add = (label: string, text: string) => out.push(`   - ${label}: ${text}`);
    add('hosts', hostsText);
    if (actionName === INCLUDE_KEY) {
      add('includes', `\`${(rawInput as { playbook: string }).playbook}\` (its steps follow as \`${id}/...\`)`);
      // What the included playbook's params are set to (rendered with the inventory where they can be).
      const given = Object.entries(((input ?? {}) as { params?: Record<string, unknown> }).params ?? {});
      if (given.length) add('with params', given.map(([k, v]) => `\`${k}=${(typeof v === 'string' ? v : JSON.stringify(v)).replace(/\s+/g, ' ').trim().replace(/`/g, "'")}\``).join(', '));
    }
    else add('action', `\`${actionName}\` ${summaryOf(actionName, rawInput ?? {})}${action ? ` (${firstSentence(action.summary)})` : ''}`);
    if (step.guard) add('guard', 'yes: a safety check that always runs (not skipped by --from, --tags, --limit or --resume)');
    if (step.confirm_key) add('confirmation', `shared under \`${step.confirm_key}\`: a yes already given on the host to a step with that key answers it`);
    if (step.when !== undefined) add('only when', `\`${String(step.when).replace(/\s+/g, ' ').trim()}\``);
    for (const key of ['unless', 'creates', 'removes'] as const) {
      const v = rawInput?.[key];
      if (v !== undefined) add(`skipped ${key === 'creates' ? 'when this exists' : key === 'removes' ? 'unless this exists' : 'when this succeeds'}`, `\`${Array.isArray(v) ? v.join(' ') : String(v).replace(/\s+/g, ' ').trim()}\``);
    }
    if (destructive.length) add('**destructive**', destructive.join('; '));
    if (step.cleanup) add('cleanup', 'yes: still runs after a failure or Ctrl-C');
    if (step.rescue) add('rescue', `\`${step.rescue.playbook}\` runs (as \`${id}/rescue/...\`) when a step of this section fails, is refused or interrupted`);
    if (step.loop !== undefined) add('loop', `\`${typeof step.loop === 'string' ? step.loop : JSON.stringify(step.loop)}\``);
    if (step.retries !== undefined) add('retries', `${step.retries}${step.delay !== undefined ? `, ${step.delay} apart` : ''}${step.until ? ` until \`${step.until}\`` : ''}`);
    if (step.timeout !== undefined) add('timeout', String(step.timeout));
    if (step.register) add('registers', `\`${step.register}\``);
    if (step.notify?.length) add('notifies', step.notify.map((n) => `\`${n}\``).join(', '));
    if (step.tags?.length) add('tags', step.tags.join(', '));
    if (step.ignore_errors) add('errors', 'ignored (the run goes on)');
    if (step.check_mode !== undefined) add('check mode', step.check_mode ? 'always (never changes anything)' : 'runs for real under plan (read-only)');
    out.push('');
    return out;
  };
  return { id, hostsText, destructive, lines };
}

/**
 * The scope an included playbook's steps are rendered in: its params as the include step gives them
 * (rendered in the includer's scope) with its own defaults, and its vars. A param whose value depends on
 * the run (a register, facts) is left out, so what reads it is shown as written and never with a default
 * it would not have. Undefined (everything as written) without an inventory, or when the params do not resolve.
 */
function includedContext(scope: Scope, inner: Playbook, given: Record<string, unknown>): Record<string, unknown> | undefined {
  if (!scope.context) return undefined;
  const known: Record<string, string> = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(given)) {
    const rendered = tryRender(scope.renderer, value, scope.context);
    if (rendered === undefined) unknown.push(name);
    else known[name] = String(rendered);
  }
  let params: Record<string, unknown>;
  try {
    const optional = Object.fromEntries(Object.entries(inner.params ?? {}).map(([k, d]) => [k, { ...d, required: false }]));
    params = resolveParams(optional, known);
  } catch {
    return undefined;
  }
  for (const name of unknown) delete params[name];
  const outer = scope.context as { vars?: Record<string, unknown> };
  const base = { ...scope.context, params };
  const own = inner.vars ? (tryRender(scope.renderer, inner.vars, base) as Record<string, unknown> | undefined) : {};
  return { ...base, vars: { ...(outer.vars ?? {}), ...(own ?? {}) } };
}

/** Which of the inventory's hosts a pattern selects, or undefined when that depends on the run (or there is no inventory). */
function hostsOf(scope: Scope, pattern: Step['hosts'] | undefined): string[] | undefined {
  if (!scope.hosts || pattern === undefined) return undefined;
  const rendered = scope.context ? tryRender(scope.renderer, pattern, scope.context) : /\{\{/.test(String(pattern)) ? undefined : pattern;
  if (rendered === undefined || (typeof rendered !== 'string' && !Array.isArray(rendered))) return undefined;
  try {
    return selectHosts(rendered as string | string[], scope.hosts);
  } catch {
    return undefined;
  }
}

/** Each top-level value rendered when it can be (params, vars, inventory), else kept as written. */
function renderEach(scope: Scope, input: Record<string, unknown>): Record<string, unknown> {
  if (!scope.context) return input;
  return Object.fromEntries(Object.entries(input).map(([k, v]) => [k, tryRender(scope.renderer, v, scope.context!) ?? v]));
}

function tryRender(renderer: Renderer, value: unknown, context: Record<string, unknown>): unknown {
  try {
    return renderer.renderValue(value, context, 'docs');
  } catch {
    return undefined;
  }
}

/** The input keys that say what the step does (command, state, type ...), as written. */
function summaryOf(action: string, input: Record<string, unknown>): string {
  const keys = ['command', 'state', 'type', 'src', 'dest', 'path', 'query', 'argv', 'shell', 'tools', 'playbook', 'that'];
  const parts: string[] = [];
  for (const k of keys) {
    const v = input[k];
    if (v === undefined || v === null) continue;
    let text = Array.isArray(v) ? v.join(' ') : typeof v === 'object' ? JSON.stringify(v) : String(v);
    text = text.replace(/\s+/g, ' ').trim();
    if (text.length > 100) text = `${text.slice(0, 97)}...`;
    parts.push(`${k}: \`${text.replace(/`/g, "'")}\``);
    if (parts.length === 2) break;
  }
  void action;
  return parts.join(', ');
}

function firstSentence(text: string): string {
  const m = /^(.*?[.:])(\s|$)/.exec(text);
  return (m ? m[1]! : text).replace(/[.:]$/, '');
}

function requiredParams(p: Playbook): string[] {
  return Object.entries(p.params ?? {}).filter(([, d]) => d.required).map(([k]) => k);
}

function defaultOf(def: ParamDef): string {
  if (def.required) return '**required**';
  if (def.default === undefined) return '';
  return def.default === '' ? '(empty)' : `\`${String(def.default)}\``;
}

function allowed(def: ParamDef): string {
  const parts: string[] = [];
  if (def.enum) parts.push(def.enum.map((v) => `\`${String(v)}\``).join(', '));
  if (def.minimum !== undefined) parts.push(`≥ ${def.minimum}`);
  if (def.maximum !== undefined) parts.push(`≤ ${def.maximum}`);
  if (def.pattern) parts.push(`matches \`${def.pattern}\``);
  return parts.join('; ');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
}

