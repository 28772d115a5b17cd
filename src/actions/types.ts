/** What an action implements: the engine owns the interface (engine/action.ts); actions import it from here. */
export type { Action, ActionContext, Outcome, RoleChange, ShellExport } from '../engine/action.js';
export type { JsonSchema } from '../schema/json-schema.js';
export { ENGINE_SERVER_READ } from '../engine/action.js';
