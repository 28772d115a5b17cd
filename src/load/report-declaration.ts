/**
 * A declared report must be fed by what the playbook really registers: each output names a value a
 * step registers (its own, or one of a playbook it includes by a fixed path: included steps register
 * in the same run), and a promotion's `rebuilt` names an include step of this playbook. A misspelt name
 * would otherwise give a report with silently empty fields.
 */
import { dirname, resolve } from 'node:path';
import { PgplayError } from '../core/errors.js';
import type { Playbook } from '../model/playbook.js';
import { registeredOutputs } from '../model/report.js';
import { didYouMean } from '../schema/describe.js';
import { stepsOf } from './semantic.js';
import type { LoadedDocument } from './yaml.js';

/** Reads an included playbook's data (as the run will: through the parse caches); throws when it cannot. */
export type ReadIncluded = (file: string) => Promise<unknown>;

/**
 * The names a declared report may use: those the playbook's steps register, with those of the playbooks
 * they include by a fixed path. Read before the checks (which are synchronous) and only for a playbook
 * that declares a report. The includes are read as the run reads them, so a shipped or unchanged one
 * comes from a parse cache: parsing them here with the YAML library cost a drill ~30-45 ms of every run.
 */
export async function reportRegisters(doc: LoadedDocument, read: ReadIncluded): Promise<string[]> {
  const data = doc.data as { report?: unknown } | null;
  if (data === null || typeof data !== 'object' || !data.report) return [];
  return [...new Set(await registersOf(data, dirname(resolve(doc.file)), new Set(), read))];
}

/** `registers`: reportRegisters' names for this document. */
export function reportErrors(doc: LoadedDocument<Playbook>, registers: readonly string[]): PgplayError[] {
  const report = doc.data.report;
  if (!report) return [];
  const errors: PgplayError[] = [];
  const emit = (path: Array<string | number>, message: string, expected: string) =>
    errors.push(new PgplayError({ code: 'SEMANTIC', message, expected, position: doc.position(['report', 'outputs', ...path]) }));

  for (const { field, index, name } of registeredOutputs(report)) {
    if (registers.includes(name)) continue;
    const guess = didYouMean(name, registers);
    emit(index === undefined ? [field] : [field, index], `report output ${field}: no step registers "${name}"${guess ? `; did you mean "${guess}"?` : ''}`, registers.length ? `a name a step registers: ${registers.join(', ')}` : 'a name a step of this playbook registers (register:)');
  }
  if (report.kind === 'promotion' && report.outputs.rebuilt !== undefined) {
    const includeStep = report.outputs.rebuilt.split('/')[0]!;
    const includes = doc.data.steps.filter((s) => s.include !== undefined).map((s) => s.id);
    if (!includes.includes(includeStep)) {
      emit(['rebuilt'], `report output rebuilt: "${includeStep}" is not an include step of this playbook`, includes.length ? `one of ${includes.join(', ')}, then /step` : 'include-step/step, naming an include step of this playbook');
    }
  }
  const rejoin = report.kind === 'rejoin' ? { at: [] as string[], outputs: report.outputs } : report.kind === 'promotion' && report.outputs.rejoin ? { at: ['rejoin'], outputs: report.outputs.rejoin } : undefined;
  if (rejoin) {
    const includes = doc.data.steps.filter((s) => s.include !== undefined).map((s) => s.id);
    for (const [field, path] of Object.entries(rejoin.outputs)) {
      if (includes.includes(String(path).split('/')[0]!)) continue;
      emit([...rejoin.at, field], `report output ${field}: "${String(path).split('/')[0]}" is not an include step of this playbook`, includes.length ? `one of ${includes.join(', ')}, then /step` : 'include-step/step, naming an include step of this playbook');
    }
  }
  return errors;
}

/** The names the steps register, with those of the playbooks they include by a fixed path (an unreadable one adds none). */
async function registersOf(data: unknown, dir: string, seen: Set<string>, read: ReadIncluded): Promise<string[]> {
  const out: string[] = [];
  for (const { body } of stepsOf(data)) {
    if (typeof body.register === 'string') out.push(body.register);
    const playbook = (body.include as { playbook?: unknown } | undefined)?.playbook;
    if (typeof playbook !== 'string' || playbook.includes('{{')) continue;
    const file = resolve(dir, playbook);
    if (seen.has(file)) continue;
    seen.add(file);
    let included: unknown;
    try {
      included = await read(file);
    } catch {
      continue; // the include's own checks report a missing or broken playbook
    }
    out.push(...(await registersOf(included, dirname(file), seen, read)));
  }
  return out;
}
