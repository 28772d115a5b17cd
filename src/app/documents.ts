import { loadAllActions, shippedActions } from '../actions/registry.js';
import { validateFiles, type ValidateFilesResult } from '../load/validate-files.js';
import { publishedSchema, type SchemaKind } from '../schema/publish.js';

/** `pgplay validate`: the files checked as playbooks and inventories, with the shipped actions. */
export function validateShippedFiles(files: ReadonlyArray<string>): Promise<ValidateFilesResult> {
  return validateFiles(files, { actions: shippedActions });
}

/** `pgplay schema`: the published JSON Schema, with the shipped actions' inputs. */
export async function shippedSchema(kind: SchemaKind): Promise<string> {
  return publishedSchema(kind, await loadAllActions());
}
