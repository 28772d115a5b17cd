import type { RunEvent } from '../engine/events.js';
import type { Renderer } from './renderer.js';

/** `--output json`: one JSON event per line, for machines. Events arrive already redacted. */
export class JsonRenderer implements Renderer {
  constructor(private readonly write: (text: string) => void) {}

  onEvent(e: RunEvent): void {
    this.write(JSON.stringify(e) + '\n');
  }

  async finish(): Promise<void> {}
}
