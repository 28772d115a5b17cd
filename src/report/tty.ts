import { Listr, type ListrTask } from 'listr2';
import type { RunEvent } from '../engine/events.js';
import { hostResultLine, indentDiff, recapLines, runEndLine } from './format.js';
import type { Renderer } from './renderer.js';

type StepResult = Extract<RunEvent, { type: 'step-result' }>;

/**
 * Terminal output with listr2: one task per step, a subtask per host with a spinner while it runs,
 * then its state. Steps run one after another in the engine, so each step is its own Listr run,
 * chained so a step's final frame is drawn before the next one starts.
 */
export class TtyRenderer implements Renderer {
  private chain: Promise<void> = Promise.resolve();
  private pending = new Map<string, (result: StepResult) => void>();
  /** A loop's item results per step@host, until its last item reports. */
  private items = new Map<string, StepResult[]>();
  private itemLines = new Map<string, string[]>();

  constructor(
    private readonly write: (text: string) => void,
    private readonly options: { diff: boolean },
  ) {}

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        this.enqueue(() =>
          this.write(`PLAYBOOK ${e.playbook}${e.check ? ' [check mode: nothing will be changed]' : ''}\ninventory ${e.inventory}\n`),
        );
        break;
      case 'step-start': {
        this.flushItems();
        const hostTasks: ListrTask[] = e.hosts.map((host) => {
          const result = new Promise<StepResult>((resolve) => this.pending.set(`${e.step}@${host}`, resolve));
          return {
            title: host,
            task: async (_ctx, task) => {
              const r = await result;
              task.title = hostResultLine(r).split('\n')[0]!;
              const items = this.itemLines.get(`${e.step}@${host}`);
              if (items) task.output = items.join('\n');
              else if (r.diff && this.options.diff) task.output = indentDiff(r.diff);
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
