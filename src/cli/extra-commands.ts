import { historyCommand } from './commands/history.js';
import { labCommand } from './commands/lab.js';

/**
 * Commands that live with their concern (lab, history) register here, so main stays a thin dispatcher.
 */
export type CommandHandler = (argv: string[], write: (text: string) => void, signal: AbortSignal) => Promise<number>;

export const extraCommands: Record<string, CommandHandler> = {
  history: (argv, write) => historyCommand(argv, write),
  lab: labCommand,
};
