import { PgplayErrors, type PgplayError } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import type { Playbook } from '../model/playbook.js';
import { validateDocument } from '../schema/validate.js';
import { playbookDocument } from '../schema/documents.js';
import { importActionsFor, type ActionList } from './action-catalog.js';
import { checkModeErrors } from './check-mode.js';
import { validByParts } from './playbook-fast-check.js';
import { reportErrors, reportRegisters } from './report-declaration.js';
import { checkActionKeys, checkPlaybook, handlerIncludes } from './semantic.js';
import { textSha256, type ParseCache } from './parse-cache.js';
import { loadYamlFileCached, sortErrors, type LoadedDocument } from './yaml.js';

export interface PlaybookLoadOptions {
  actions: ActionList;
  /** Loaded for plan / --check: a step that would run for real then (check_mode: false) must be read-only. */
  check?: boolean;
  /** When known, step and handler `hosts` are checked against it. */
  inventory?: Inventory;
  templateDirs?: string[];
  /** Loaded through an include: steps may omit `hosts` and inherit the include step's. */
  included?: boolean;
  /** The state directory's parse cache (parse-cache.ts): an unchanged text that passed the schema is not validated again. */
  cache?: ParseCache;
}

export interface LoadedPlaybook {
  playbook: Playbook;
  doc: LoadedDocument<Playbook>;
}

/**
 * Shape errors (schema and the one-action rule), or, once the shape is right, meaning errors.
 * `reportNames`: what reportRegisters read for this document (the names its declared report may use).
 */
export function playbookErrors(doc: LoadedDocument, options: PlaybookLoadOptions, reportNames: readonly string[], schemaPassed = false): PgplayError[] {
  const names = options.actions.map((a) => a.name);
  // Not the schema itself: it is only built when the build generated no validator for it.
  const schema = playbookDocument(options.actions, { hostsOptional: options.included ?? false });
  const misplaced = handlerIncludes(doc);
  const at = (e: PgplayError) => `${e.position?.line}:${e.position?.col}`;
  // A valid playbook (the usual case) is known valid by parts; else an included one is tried against the playbook
  // validator (hosts given) before the included-playbook validator is built; only an invalid one loads the full one.
  const valid = schemaPassed || validByParts(doc, options.actions, options) || (options.included === true && validAsPlaybook(doc, options.actions));
  const schemaErrors = valid ? [] : validateDocument(doc, schema).filter((e) => !misplaced.some((m) => at(m) === at(e)));
  const shape = [...schemaErrors, ...misplaced, ...checkActionKeys(doc, names)];
  if (shape.length) return sortErrors(shape);
  const playbook = doc as LoadedDocument<Playbook>;
  return sortErrors([...checkPlaybook(playbook, options), ...reportErrors(playbook, reportNames), ...(options.check ? checkModeErrors(doc, options.actions) : [])]);
}

/**
 * An included playbook's schema differs from a playbook's only in that its steps may leave `hosts` out.
 * Given hosts where it has none, a valid included playbook passes the playbook validator, which the run
 * has loaded for its own playbook already: the included one (another generated module of ~700 KB, 50-280
 * ms to load, in the middle of the run at its first include) is loaded only for the exact errors of an
 * included playbook that does not pass.
 */
function validAsPlaybook(doc: LoadedDocument, actions: PlaybookLoadOptions['actions']): boolean {
  const data = doc.data as { steps?: unknown } | null;
  if (data === null || typeof data !== 'object' || !Array.isArray(data.steps)) return false;
  const hosted = (step: unknown) => (step !== null && typeof step === 'object' && !Array.isArray(step) && !('hosts' in step) ? { ...step, hosts: 'all' } : step);
  return validateDocument({ ...doc, data: { ...data, steps: data.steps.map(hosted) } }, playbookDocument(actions)).length === 0;
}

/**
 * The parse cache's name for "this text passed the playbook schema": the schema differs for an included
 * playbook and with the action list (under the build the entry names).
 */
function schemaCheckName(options: PlaybookLoadOptions): string {
  return `${options.included ? 'included-playbook' : 'playbook'}:${textSha256(options.actions.map((a) => a.name).join(',')).slice(0, 16)}`;
}

/** Reads, validates and checks a playbook; throws PgplayErrors holding every problem found. */
export async function loadPlaybook(file: string, options: PlaybookLoadOptions): Promise<LoadedPlaybook> {
  const load = await loadYamlFileCached<Playbook>(file, options.cache);
  const { doc } = load;
  await importActionsFor(doc, options.actions, options);
  const schemaCheck = schemaCheckName(options);
  const reportNames = await reportRegisters(doc, async (include) => (await loadYamlFileCached(include, options.cache)).doc.data);
  const errors = playbookErrors(doc, options, reportNames, load.passed.has(schemaCheck));
  if (errors.length) throw new PgplayErrors(errors);
  await load.remember(schemaCheck);
  return { playbook: doc.data, doc };
}
