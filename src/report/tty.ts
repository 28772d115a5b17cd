import { Listr, type ListrTask, type ListrTaskWrapper } from 'listr2';
import type { RunEvent } from '../engine/events.js';
import { hostResultLine, indentDiff, recapLines, runEndLine } from './format.js';
import type { Renderer } from './renderer.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;
type HostTask = Pick<ListrTaskWrapper<unknown, never, never>, 'output'>;

/** Log lines of one step on one host, kept until its listr task is drawn (the engine runs ahead of the drawing). */
class HostLog {
  lines: string[] = [];
  task?: HostTask;

  add(line: string): void {
    this.lines.push(line);
    this.show();
  }

  attach(task: HostTask): void {
    this.task = task;
    this.show();
  }

  private show(): void {
    if (this.task && this.lines.length) this.task.output = this.lines.join('\n');
  }
}

/**
 * Terminal output with listr2: one task per step, a subtask per host with a spinner while it runs,
 * then its state. Steps run one after another in the engine, so each step is its own Listr run,
 * chained so a step's final frame is drawn before the next one starts.
 */
export class TtyRenderer implements Renderer {
  private chain: Promise<void> = Promise.resolve();
  private pending = new Map<string, (result: StepResult) => void>();
  /** --verbose: the log lines of each step and host, shown as that host's task output. */
  private logs = new Map<string, HostLog>();
  /** A loop's item results per step@host, until its last item reports. */
  private items = new Map<string, StepResult[]>();
  private itemLines = new Map<string, string[]>();

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: { diff: boolean; verbose?: boolean },
  ) {}

  private logOf(key: string): HostLog {
    let log = this.logs.get(key);
    if (!log) this.logs.set(key, (log = new HostLog()));
    return log;
  }

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        this.enqueue(() =>
          this.write(`PLAYBOOK ${e.playbook}${e.shipped ? ' (shipped with pgplay)' : ''}${e.check ? ' [check mode: nothing will be changed]' : ''}\ninventory ${e.inventory}\n`),
        );
        break;
      case 'step-start': {
        this.flushItems();
        const hostTasks: ListrTask[] = e.hosts.map((host) => {
          const key = `${e.step}@${host}`;
          const result = new Promise<StepResult>((resolve) => this.pending.set(key, resolve));
          const log = this.options.verbose ? this.logOf(key) : undefined;
          return {
            title: host,
            task: async (_ctx, task) => {
              log?.attach(task);
              const r = await result;
              this.logs.delete(key);
              task.title = hostResultLine(r).split('\n')[0]!;
              // A loop shows one line per item (with its diff); a plain step its diff. Log lines (-v) come first.
              const items = this.itemLines.get(key);
              const output = [...(log?.lines ?? []), ...(items ?? (r.diff && this.options.diff ? [indentDiff(r.diff)] : []))];
              if (output.length) task.output = output.join('\n');
              if (r.status === 'failed' && !r.ignored) throw new Error(task.title);
              if (r.status === 'skipped') task.skip(task.title);
            },
            rendererOptions: { persistentOutput: true },
          };
        });
        const listr = new Listr(
          [
            {
              title: `${e.handler ? 'handler' : 'step'} ${e.step}: ${e.name}`,
              task: (_ctx, task) => task.newListr(hostTasks, { concurrent: true, exitOnError: false }),
            },
          ],
          { exitOnError: false, rendererOptions: { collapseSubtasks: false, collapseErrors: false } },
        );
        this.chain = this.chain.then(() => listr.run().then(() => undefined, () => undefined));
        break;
      }
      case 'step-result': {
        const key = `${e.step}@${e.host}`;
        if (e.index !== undefined) {
          this.items.set(key, [...(this.items.get(key) ?? []), e]);
          break;
        }
        this.pending.get(key)?.(e);
        this.pending.delete(key);
        break;
      }
      case 'run-end':
        this.flushItems();
        this.enqueue(() => this.write(`\nRECAP\n${recapLines(e.recap).map((l) => '  ' + l).join('\n')}\n${runEndLine(e)}\n`));
        break;
      case 'log':
        // Lines outside a step (the connection notices, which also go to stderr) have no task to show under.
        if (this.options.verbose && e.step !== 'connect') this.logOf(`${e.step}@${e.host}`).add(e.line);
        break;
    }
  }

  /**
   * A host's task shows a loop as one result: the worst status of its items, and a line per item as
   * its output. The engine reports every item of a step before the next step starts (or the run
   * ends), so that is when the items are complete, however many there were.
   */
  private flushItems(): void {
    const rank: StepResult['status'][] = ['skipped', 'ok', 'changed', 'failed'];
    for (const [key, list] of this.items) {
      const worst = list.reduce((a, b) => (rank.indexOf(b.status) > rank.indexOf(a.status) && !b.ignored ? b : a));
      this.itemLines.set(key, list.map((r) => hostResultLine(r).split('\n')[0]!));
      const durationMs = list.reduce((sum, r) => sum + r.durationMs, 0);
      this.pending.get(key)?.({ ...worst, index: undefined, attempts: 1, durationMs, msg: `${list.length} item${list.length === 1 ? '' : 's'}`, error: undefined });
      this.pending.delete(key);
    }
    this.items.clear();
  }

  private enqueue(fn: () => void): void {
    this.chain = this.chain.then(fn);
  }

  finish(): Promise<void> {
    return this.chain;
  }
}
