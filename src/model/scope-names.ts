/**
 * Names a register cannot take: the template scope's own (engine/scope.ts), and a loop's item
 * (engine/loop.ts). Here, not in the engine, because the loader checks them before any run.
 */
export const RESERVED_NAMES = ['params', 'vars', 'host', 'hosts', 'inventory', 'facts', 'registered', 'item', 'item_index'] as const;
