import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SHIPPED_TEMPLATES } from '../core/paths.js';
import { PgplayError } from '../core/errors.js';
import { RESERVED_NAMES } from '../model/scope-names.js';
import { parseExpression } from '../expr/index.js';
import { ROLES, type Inventory } from '../model/inventory.js';
import { INCLUDE_KEY, STEP_KEYS, type ParamDef, type Playbook } from '../model/playbook.js';
import { didYouMean } from '../schema/describe.js';
import { isTemplated } from '../schema/templated.js';
import { describeHostChoices } from './hosts.js';
import { checkParamValue } from './params.js';
import { collector, type Emit } from './semantic-errors.js';
import type { DocPath, LoadedDocument } from './yaml.js';

interface StepLike {
  where: DocPath;
  label: string;
  body: Record<string, unknown>;
}

export function stepsOf(data: unknown): StepLike[] {
  const pb = (data ?? {}) as { steps?: unknown; handlers?: unknown };
  const out: StepLike[] = [];
  if (Array.isArray(pb.steps)) {
    pb.steps.forEach((s, i) => {
      if (!s || typeof s !== 'object' || Array.isArray(s)) return;
      const id = (s as Record<string, unknown>).id;
      out.push({ where: ['steps', i], label: `step ${typeof id === 'string' ? id : `#${i + 1}`}`, body: s as Record<string, unknown> });
    });
  }
  if (pb.handlers && typeof pb.handlers === 'object' && !Array.isArray(pb.handlers)) {
    for (const [name, h] of Object.entries(pb.handlers)) {
      if (h && typeof h === 'object' && !Array.isArray(h)) out.push({ where: ['handlers', name], label: `handler ${name}`, body: h as Record<string, unknown> });
    }
  }
  return out;
}

/**
 * Exactly one action per step and handler. Checked here rather than as a schema oneOf, which would
 * report one error per action. A step holding an unknown key is left to the schema's "unknown key"
 * error: that key is most likely the misspelt action.
 */
export function checkActionKeys(doc: LoadedDocument, actions: ReadonlyArray<string>): PgplayError[] {
  const { errors, emit } = collector(doc, 'SCHEMA');
  const common = new Set<string>(STEP_KEYS);
  for (const { where, label, body } of stepsOf(doc.data)) {
    const keys = Object.keys(body);
    // A step may hold an include instead of an action; a handler may not (see handlerIncludes).
    const actionNames = where[0] === 'steps' ? [...actions, INCLUDE_KEY] : actions;
    const found = keys.filter((k) => actionNames.includes(k));
    if (found.length === 0) {
      if (keys.some((k) => !common.has(k))) continue;
      emit(where, `${label} has no action`, {
        expected: actionNames.length ? `one of ${actionNames.join(', ')}` : 'an action, but none is registered',
      });
    } else if (found.length > 1) {
      emit([...where, found[1]!], `${label} has more than one action: ${found.join(', ')}`, {
        part: 'key',
        expected: 'exactly one action per step; split it into several steps',
      });
    }
  }
  return errors;
}

/**
 * Handlers run one action on the hosts that notified them; an include is a sequence of steps with
 * hosts of their own, so a handler cannot hold one. Reported here, at the key, in place of the
 * schema's plain "unknown key".
 */
export function handlerIncludes(doc: LoadedDocument): PgplayError[] {
  const { errors, emit } = collector(doc, 'SCHEMA');
  for (const { where, label, body } of stepsOf(doc.data)) {
    if (where[0] !== 'handlers' || !(INCLUDE_KEY in body)) continue;
    emit([...where, INCLUDE_KEY], `${label}: include cannot run as a handler`, {
      part: 'key',
      expected: 'one action in a handler',
      hint: 'put the included steps in a step with `when:` (or notify a handler per action they take)',
    });
  }
  return errors;
}

export interface PlaybookCheckOptions {
  /** Inventory the playbook will run against; without one, host names cannot be checked. */
  inventory?: Inventory;
  /** Directories searched for `template: {src}`; default: templates/ beside the playbook, the playbook's dir, the shipped templates. */
  templateDirs?: string[];
}

/** Meaning checks of a playbook that already matches its schema. */
export function checkPlaybook(doc: LoadedDocument<Playbook>, options: PlaybookCheckOptions = {}): PgplayError[] {
  const { errors, emit } = collector(doc);
  const pb = doc.data;
  const playbookDir = dirname(resolve(doc.file));
  const templateDirs = options.templateDirs ?? [resolve(playbookDir, 'templates'), playbookDir, SHIPPED_TEMPLATES];

  const firstId = new Map<string, number>();
  pb.steps.forEach((step, i) => {
    const seen = firstId.get(step.id);
    if (seen === undefined) firstId.set(step.id, i);
    else {
      const line = doc.position(['steps', seen, 'id']).line;
      emit(['steps', i, 'id'], `duplicate step id "${step.id}" (first used at line ${line})`, { expected: 'a step id unique in the playbook' });
    }
  });

  for (const [name, def] of Object.entries(pb.params ?? {})) checkParamDef(emit, name, def, pb.params ?? {});

  const handlers = Object.keys(pb.handlers ?? {});
  for (const { where, label, body } of stepsOf(pb)) {
    if (options.inventory && body.hosts !== undefined) checkStepHosts(emit, [...where, 'hosts'], body.hosts, options.inventory);

    if (Array.isArray(body.notify)) {
      body.notify.forEach((n: unknown, j: number) => {
        if (typeof n !== 'string' || handlers.includes(n)) return;
        const guess = didYouMean(n, handlers);
        emit([...where, 'notify', j], `${label} notifies unknown handler "${n}"${guess ? `; did you mean "${guess}"?` : ''}`, {
          expected: handlers.length ? `one of ${handlers.join(', ')}` : 'a handler defined under handlers:',
        });
      });
    }

    if (typeof body.register === 'string' && (RESERVED_NAMES as readonly string[]).includes(body.register)) {
      emit([...where, 'register'], `"${body.register}" is reserved and cannot be a register name`, {
        expected: `a name other than ${RESERVED_NAMES.join(', ')}`,
      });
    }

    for (const key of ['when', 'until'] as const) {
      const expr = body[key];
      if (typeof expr !== 'string') continue;
      try {
        parseExpression(expr);
      } catch (e) {
        if (!(e instanceof PgplayError)) throw e;
        emit([...where, key], `${label}: ${key}: ${e.message}`, { expected: e.expected, hint: e.hint });
      }
    }

    const template = body.template as { src?: unknown } | undefined;
    if (template && typeof template.src === 'string' && !isTemplated(template.src)) {
      checkTemplateSrc(emit, [...where, 'template', 'src'], template.src, templateDirs);
    }

    if (body.loop !== undefined && INCLUDE_KEY in body && body.hosts === undefined) {
      emit([...where, 'loop'], `${label}: a looped include needs hosts (its loop is rendered on them)`, {
        part: 'key',
        expected: 'hosts: the hosts whose facts and registered values the loop reads',
      });
    }

    // An include runs no action on a host itself: each included step decides for its own hosts.
    if (body.unreachable !== undefined && INCLUDE_KEY in body) {
      emit([...where, 'unreachable'], `${label}: unreachable applies to a step's action on its hosts, not to an include`, {
        part: 'key',
        expected: 'unreachable: tolerate on the included steps that may meet an unreachable host',
      });
    }

    if (body.rescue !== undefined && !(INCLUDE_KEY in body)) {
      emit([...where, 'rescue'], `${label}: rescue belongs on an include step (the section it puts back)`, {
        part: 'key',
        expected: 'include: the section, and rescue: the playbook that undoes it when the section fails',
      });
    }
    for (const key of [INCLUDE_KEY, 'rescue'] as const) {
      const include = body[key] as { playbook?: unknown } | undefined;
      if (include && typeof include.playbook === 'string' && !isTemplated(include.playbook)) {
        const target = resolve(playbookDir, include.playbook);
        if (!isFile(target)) {
          emit([...where, key, 'playbook'], `${key === INCLUDE_KEY ? 'included' : 'rescue'} playbook "${include.playbook}" not found`, {
            expected: 'a playbook file, relative to this playbook',
            hint: `looked for ${target}`,
          });
        }
      }
    }
  }
  return errors;
}

function checkParamDef(emit: Emit, name: string, def: ParamDef, all: Record<string, ParamDef>): void {
  const of = def.recovery_target_of;
  if (of !== undefined && all[of]?.type !== 'string') {
    emit(['params', name, 'recovery_target_of'], `recovery_target_of of param "${name}": ${all[of] ? `param "${of}" is not a string` : `no param "${of}"`}`, {
      expected: 'the name of the string param that holds the target type (latest, time, name, xid, lsn, immediate)',
    });
  }
  def.enum?.forEach((v, j) => {
    const problem = checkParamValue({ type: def.type }, v);
    if (problem) emit(['params', name, 'enum', j], `enum value ${JSON.stringify(v)} of param "${name}" ${problem.what}`, { expected: problem.expected });
  });
  if (def.default !== undefined) {
    const problem = checkParamValue(def, def.default);
    if (problem) emit(['params', name, 'default'], `default ${JSON.stringify(def.default)} of param "${name}" ${problem.what}`, { expected: problem.expected });
  }
}

function checkStepHosts(emit: Emit, path: DocPath, hosts: unknown, inv: Inventory): void {
  const names = Object.keys(inv.hosts);
  const known = new Set<string>([...names, ...ROLES, 'all']);
  const items: Array<{ path: DocPath; value: unknown }> = Array.isArray(hosts)
    ? hosts.map((value, j) => ({ path: [...path, j], value }))
    : [{ path, value: hosts }];
  for (const { path: at, value } of items) {
    if (typeof value !== 'string' || isTemplated(value)) continue;
    for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
      if (known.has(part)) continue;
      const guess = didYouMean(part, [...known]);
      emit(at, `unknown host or role "${part}" in hosts${guess ? `; did you mean "${guess}"?` : ''}`, {
        expected: describeHostChoices(names),
      });
    }
  }
}

function checkTemplateSrc(emit: Emit, path: DocPath, src: string, dirs: ReadonlyArray<string>): void {
  if (dirs.some((d) => isFile(resolve(d, src)))) return;
  const available = dirs.flatMap((d) => listFiles(d)).filter((f) => f.endsWith('.hbs'));
  const guess = didYouMean(src, available);
  emit(path, `template "${src}" not found${guess ? `; did you mean "${guess}"?` : ''}`, {
    expected: 'a file under templates/ beside the playbook, beside the playbook, or a shipped template',
    hint: `looked in ${dirs.join(', ')}`,
  });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
