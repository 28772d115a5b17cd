import { JsonRenderer } from './json.js';
import { PlainRenderer } from './plain.js';
import type { Renderer } from './renderer.js';
import { TtyRenderer } from './tty.js';

export type OutputFormat = 'human' | 'json';

/** listr2 in a terminal; plain lines when not a TTY or under CI=true; JSON lines on request. */
export function createRenderer(
  format: OutputFormat,
  options: { diff: boolean; verbose?: boolean; stream?: NodeJS.WriteStream; env?: NodeJS.ProcessEnv },
): Renderer {
  const stream = options.stream ?? process.stdout;
  const write = (text: string) => void stream.write(text);
  if (format === 'json') return new JsonRenderer(write);
  const env = options.env ?? process.env;
  const ci = env.CI === 'true' || env.CI === '1';
  if (stream.isTTY && !ci) return new TtyRenderer(write, options);
  return new PlainRenderer(write, options);
}

export type { Renderer };
