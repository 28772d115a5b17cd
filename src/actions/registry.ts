import type { Action } from './types.js';

/**
 * Every action pgplay knows, by name. The playbook schema is built from this list, so an action's
 * input schema is published (schemas/playbook.schema.json) the moment it is registered here.
 */
export const actions: Action<any>[] = [];

const byName = new Map<string, Action<any>>();

export function registerAction(action: Action<any>): void {
  if (byName.has(action.name)) throw new Error(`action ${action.name} registered twice`);
  byName.set(action.name, action);
  actions.push(action);
}

export function getAction(name: string): Action<any> | undefined {
  return byName.get(name);
}

export function actionNames(): string[] {
  return actions.map((a) => a.name);
}
