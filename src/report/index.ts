import { JsonRenderer } from './json.js';
import { PlainRenderer } from './plain.js';
import type { Renderer } from './renderer.js';

export type OutputFormat = 'human' | 'json';

/**
 * listr2 in a terminal; plain lines when not a TTY or under CI=true; JSON lines on request. listr2 is
 * imported only for a terminal: scripts, CI and JSON output never pay for loading it.
 */
export async function createRenderer(
  format: OutputFormat,
  options: { diff: boolean; verbose?: boolean; stream?: NodeJS.WriteStream; env?: NodeJS.ProcessEnv },
): Promise<Renderer> {
  const stream = options.stream ?? process.stdout;
  const write = (text: string) => void stream.write(text);
  if (format === 'json') return new JsonRenderer(write);
  const env = options.env ?? process.env;
  const ci = env.CI === 'true' || env.CI === '1';
  if (stream.isTTY && !ci) return new (await import('./tty.js')).TtyRenderer(write, options);
  return new PlainRenderer(write, options);
}

export type { Renderer };
