import type { RunEvent } from '../engine/events.js';

export interface Renderer {
  onEvent(event: RunEvent): void;
  /** Resolves once everything has been drawn. */
  finish(): Promise<void>;
}
