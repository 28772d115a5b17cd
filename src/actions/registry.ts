import { markShippedActions } from '../schema/documents.js';
import type { JsonSchema } from '../schema/json-schema.js';
import type { Action } from './types.js';

/*
 * Every action pgplay knows, by name, each imported on first use: a run imports the actions its
 * playbook (and its includes) use, not all of them with their postgres/, pgbackrest and barman helpers
 * (over 100 modules, about half of what a run loaded before its first command). The playbook schema is
 * built from the full list (loadAllActions), so an action's input schema is published
 * (schemas/playbook.schema.json) the moment it is listed here.
 */
const MODULES = {
  command: () => import('./command.js'),
  template: () => import('./template.js'),
  file: () => import('./file.js'),
  sql: () => import('./sql.js'),
  wait: () => import('./wait.js'),
  assert: () => import('./assert.js'),
  postgres: () => import('./postgres.js'),
  basebackup: () => import('./basebackup.js'),
  recovery: () => import('./recovery.js'),
  pgpass: () => import('./pgpass.js'),
  pgbackrest: () => import('./pgbackrest.js'),
  pending_restart: () => import('./pending-restart.js'),
  preflight: () => import('./preflight.js'),
  debian_cluster: () => import('./debian-cluster.js'),
  block: () => import('./block.js'),
  role: () => import('./role.js'),
  pitr_target: () => import('./pitr-target.js'),
  rewind: () => import('./rewind.js'),
  dump: () => import('./dump.js'),
  restore_dump: () => import('./restore-dump.js'),
  base_restore: () => import('./base-restore.js'),
  wal_archive: () => import('./wal-archive.js'),
  base_copy: () => import('./base-copy.js'),
  data_check: () => import('./data-check.js'),
  drill_sentinel: () => import('./drill-sentinel.js'),
  barman: () => import('./barman.js'),
} satisfies Record<string, () => Promise<{ default: Action<any> }>>;

type ActionName = keyof typeof MODULES;

const loaded = new Map<string, Action<any>>();

function isActionName(name: string): name is ActionName {
  return Object.hasOwn(MODULES, name);
}

/** The names of every shipped action, without importing any. */
export function actionNames(): string[] {
  return Object.keys(MODULES);
}

/** Imports the named actions (unknown names are left to the loader's errors); each module once. */
export async function loadActions(names: Iterable<string>): Promise<Action<any>[]> {
  const wanted = [...new Set(names)].filter(isActionName);
  await Promise.all(
    wanted.map(async (name) => {
      if (loaded.has(name)) return;
      const action = (await MODULES[name]()).default;
      if (action.name !== name) throw new Error(`src/actions/registry.ts lists ${name}, whose module exports the action ${action.name}`);
      loaded.set(name, action);
    }),
  );
  return wanted.map((name) => loaded.get(name)!);
}

let all: readonly Action<any>[] | undefined;

/** Every shipped action, imported (the schema commands, the build, docs and tests need them all). */
export async function loadAllActions(): Promise<readonly Action<any>[]> {
  if (!all) {
    all = await loadActions(actionNames());
    // The build generates the playbook validators from this very list: loaders given it use them.
    markShippedActions(all);
  }
  return all;
}

/** A shipped action once imported (loadActions / loadAllActions / a loader given shippedActions). */
export function getAction(name: string): Action<any> | undefined {
  return loaded.get(name);
}

/**
 * One entry of the list a loader is given: the name without the module. What the loader reads of it
 * (the input schema, when no validator was generated for the playbook schema; readOnly under --check)
 * is the imported action's: the loader imports the actions a playbook uses before checking it
 * (load/action-catalog.ts), and all of them before it builds the playbook schema.
 */
class ShippedAction {
  constructor(readonly name: string) {}

  private get action(): Action<any> {
    const action = loaded.get(this.name);
    if (!action) throw new Error(`action ${this.name} read before it was imported (loadActions)`);
    return action;
  }

  get summary(): string {
    return this.action.summary;
  }

  get schema(): JsonSchema {
    return this.action.schema;
  }

  readOnly(input: unknown): boolean {
    return this.action.readOnly?.(input) ?? false;
  }
}

/**
 * The shipped actions as the loaders take them (load/action-catalog.ts): names known at once, each
 * module imported when a playbook uses it.
 */
export const shippedActions = Object.assign(
  actionNames().map((name) => new ShippedAction(name)),
  {
    load: (names: Iterable<string>): Promise<unknown> => loadActions(names),
    loadAll: (): Promise<unknown> => loadAllActions(),
  },
);
markShippedActions(shippedActions);
