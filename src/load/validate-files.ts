import { PgplayError, PgplayErrors } from '../core/errors.js';
import type { Inventory } from '../model/inventory.js';
import { importActionsFor, type ActionList } from './action-catalog.js';
import { inventoryErrors } from './inventory-errors.js';
import { playbookErrors } from './playbook.js';
import { reportRegisters } from './report-declaration.js';
import { loadYamlFile, type LoadedDocument } from './yaml.js';

export type FileKind = 'playbook' | 'inventory';

export interface ValidateFilesOptions {
  actions: ActionList;
  /** Inventory to check playbook hosts against; by default the one inventory among the files, if exactly one. */
  inventory?: Inventory;
  templateDirs?: string[];
}

export interface ValidateFilesResult {
  /** Every problem in every file, file by file in the order given, each sorted by position. */
  errors: PgplayError[];
  /** Files that passed, with what they were taken for. */
  checked: Array<{ file: string; kind: FileKind }>;
}

/** A playbook has steps; an inventory has hosts or a cluster name. */
export function detectKind(data: unknown): FileKind | undefined {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return undefined;
  if ('steps' in data) return 'playbook';
  if ('hosts' in data || 'cluster' in data) return 'inventory';
  return undefined;
}

/**
 * Validates playbooks and inventories together (what `pgplay validate` does). Inventories go first so
 * that a playbook given alongside exactly one inventory has its host names checked against it.
 */
export async function validateFiles(given: ReadonlyArray<string>, options: ValidateFilesOptions): Promise<ValidateFilesResult> {
  const paths = [...new Set(given)];
  const perFile = new Map<string, PgplayError[]>();
  const docs: Array<{ file: string; doc: LoadedDocument; kind: FileKind }> = [];

  for (const file of paths) {
    try {
      const doc = await loadYamlFile(file);
      const kind = detectKind(doc.data);
      if (kind) docs.push({ file, doc, kind });
      else {
        perFile.set(file, [
          new PgplayError({
            code: 'SCHEMA',
            message: 'cannot tell whether this is a playbook or an inventory',
            expected: 'a playbook (with steps:) or an inventory (with cluster: and hosts:)',
            position: doc.position([]),
          }),
        ]);
      }
    } catch (e) {
      if (!(e instanceof PgplayErrors)) throw e;
      perFile.set(file, e.errors);
    }
  }

  const validInventories: Inventory[] = [];
  for (const { file, doc, kind } of docs) {
    if (kind !== 'inventory') continue;
    const errors = inventoryErrors(doc);
    perFile.set(file, errors);
    if (errors.length === 0) validInventories.push(doc.data as Inventory);
  }
  const inventoryCount = docs.filter((d) => d.kind === 'inventory').length;
  const inventory = options.inventory ?? (inventoryCount === 1 ? validInventories[0] : undefined);
  for (const { file, doc, kind } of docs) {
    if (kind !== 'playbook') continue;
    await importActionsFor(doc, options.actions);
    const reportNames = await reportRegisters(doc, async (include) => (await loadYamlFile(include)).data);
    perFile.set(file, playbookErrors(doc, { actions: options.actions, inventory, templateDirs: options.templateDirs }, reportNames));
  }

  const errors: PgplayError[] = [];
  const checked: ValidateFilesResult['checked'] = [];
  for (const file of paths) {
    const list = perFile.get(file) ?? [];
    errors.push(...list);
    const kind = docs.find((d) => d.file === file)?.kind;
    if (kind && list.length === 0) checked.push({ file, kind });
  }
  return { errors, checked };
}
