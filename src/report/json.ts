import { errorPayload, EXIT, PgplayError, PgplayErrors } from '../core/errors.js';
import type { ErrorEvent, RunEvent } from '../engine/events.js';
import type { Renderer } from './renderer.js';

/** `--output json`: one JSON event per line, for machines. Events arrive already redacted. */
export class JsonRenderer implements Renderer {
  constructor(private readonly write: (text: string) => void) {}

  onEvent(e: RunEvent): void {
    this.write(JSON.stringify(e) + '\n');
  }

  async finish(): Promise<void> {}
}

/** An error that ended pgplay outside a run (bad input, exit 2; or an internal error) as a JSON event. */
export function errorEvent(e: unknown): ErrorEvent {
  const time = new Date().toISOString();
  if (e instanceof PgplayErrors) return { type: 'error', exitCode: e.exitCode, errors: e.errors.map(errorPayload), time };
  if (e instanceof PgplayError) return { type: 'error', exitCode: e.exitCode, errors: [errorPayload(e)], time };
  const message = e instanceof Error ? e.message : String(e);
  return { type: 'error', exitCode: EXIT.FAILED, errors: [{ code: 'INTERNAL', message, exitCode: EXIT.FAILED }], time };
}
