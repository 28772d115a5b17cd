/**
 * A declared report must be fed by what the playbook really registers: each output names a value a
 * step registers (its own, or one of a playbook it includes by a fixed path: included steps register
 * in the same run), and a promotion's `rebuilt` names an include step of this playbook. A misspelt name
 * would otherwise give a report with silently empty fields.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { yamlLib } from './yaml-lib.js';
import { PgplayError } from '../core/errors.js';
import type { Playbook } from '../model/playbook.js';
import { registeredOutputs } from '../model/report.js';
import { didYouMean } from '../schema/describe.js';
import { stepsOf } from './semantic.js';
import type { LoadedDocument } from './yaml.js';

export function reportErrors(doc: LoadedDocument<Playbook>): PgplayError[] {
  const report = doc.data.report;
  if (!report) return [];
  const errors: PgplayError[] = [];
  const emit = (path: Array<string | number>, message: string, expected: string) =>
    errors.push(new PgplayError({ code: 'SEMANTIC', message, expected, position: doc.position(['report', 'outputs', ...path]) }));

  const registers = [...new Set(registersOf(doc.data, dirname(resolve(doc.file)), new Set()))];
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
function registersOf(data: unknown, dir: string, seen: Set<string>): string[] {
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
      included = yamlLib().parse(readFileSync(file, 'utf8'));
    } catch {
      continue; // the include's own checks report a missing or broken playbook
    }
    out.push(...registersOf(included, dirname(file), seen));
  }
  return out;
}
