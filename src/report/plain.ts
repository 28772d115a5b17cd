import type { RunEvent } from '../engine/events.js';
import { hostResultLine, indentDiff, recapLines, runEndLine } from './format.js';
import type { Renderer } from './renderer.js';

/** Line output for logs, pipes and CI: no spinners, one line per step and host, as events arrive. */
export class PlainRenderer implements Renderer {
  constructor(
    private readonly write: (text: string) => void,
    private readonly options: { diff: boolean; verbose?: boolean },
  ) {}

  onEvent(e: RunEvent): void {
    switch (e.type) {
      case 'run-start':
        this.write(`PLAYBOOK ${e.playbook}${e.shipped ? ' (shipped with pgplay)' : ''}${e.check ? ' [check mode: nothing will be changed]' : ''}\n`);
        this.write(`inventory ${e.inventory}; hosts ${e.hosts.join(', ')}\n`);
        break;
      case 'step-start':
        this.write(`\n${e.handler ? 'HANDLER' : 'STEP'} ${e.step}: ${e.name}\n`);
        break;
      case 'step-result':
        this.write(`  ${hostResultLine(e)}\n`);
        if (e.diff && this.options.diff) this.write(indentDiff(e.diff) + '\n');
        break;
      case 'log':
        if (this.options.verbose) this.write(`    ${e.host}: ${e.line}\n`);
        break;
      case 'run-end':
        this.write(`\nRECAP\n${recapLines(e.recap).map((l) => '  ' + l).join('\n')}\n${runEndLine(e)}\n`);
        break;
    }
  }

  async finish(): Promise<void> {}
}
