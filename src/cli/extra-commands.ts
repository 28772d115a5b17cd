/**
 * Commands that live with their concern (lab, history) register here, so main stays a thin dispatcher.
 * Each is imported only when it runs (the lab pulls in execa and the whole engine).
 */
export type CommandHandler = (argv: string[], write: (text: string) => void, signal: AbortSignal) => Promise<number>;

export const extraCommands: Record<string, CommandHandler> = {
  history: async (argv, write) => (await import('./commands/history.js')).historyCommand(argv, write),
  playbooks: async (argv, write) => (await import('./commands/playbooks.js')).playbooksCommand(argv, write),
  schedule: async (argv, write) => (await import('./commands/schedule.js')).scheduleCommand(argv, write),
  docs: async (argv, write) => (await import('./commands/docs.js')).docsCommand(argv, write),
  drills: async (argv, write) => (await import('./commands/drills.js')).drillsCommand(argv, write),
  report: async (argv, write) => (await import('./commands/report.js')).reportCommand(argv, write),
  evidence: async (argv, write) => (await import('./commands/evidence.js')).evidenceCommand(argv, write),
  status: async (argv, write) => (await import('./commands/status.js')).statusCommand(argv, write),
  lab: async (argv, write, signal) => (await import('./commands/lab.js')).labCommand(argv, write, signal),
};
