#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, PgplayError, PgplayErrors } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { processRedactor } from '../core/redact.js';
import { usage } from './args.js';
import { COMMAND_HELP, MAIN_HELP } from './help.js';
import { extraCommands } from './extra-commands.js';
import { enableCompileCache } from './compile-cache.js';
import { endProcess } from './exit.js';
import { Interrupts } from './interrupt.js';

// Before a command's chunks load: they, the validators and the templates compile from the V8 code cache of
// the runs before (compile-cache.ts). Those this module imported above are loaded already; they are the
// small ones every command shares.
enableCompileCache(join(PACKAGE_ROOT, 'dist'));

// bin/pgplay kept NODE_EXTRA_CA_CERTS from node's own start (node reads that file as it starts, for TLS
// pgplay does not do); the commands pgplay starts get it back as it was.
const handedBack = process.env.PGPLAY_NODE_EXTRA_CA_CERTS;
if (handedBack !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = handedBack;
  delete process.env.PGPLAY_NODE_EXTRA_CA_CERTS;
}

const write = (text: string) => void process.stdout.write(text);

function version(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Each command is imported when it is chosen: a command's module graph (ssh2, pg, execa, listr2, ajv,
 * ...) costs hundreds of milliseconds to load, and `--version` or `validate` needs none of the others.
 */
export async function main(argv: string[]): Promise<number> {
  // Before anything is written: a reader that goes away must not crash a command (src/cli/interrupt.ts).
  const interrupts = new Interrupts();
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h') {
    write(MAIN_HELP);
    return command === undefined ? EXIT.INVALID : EXIT.OK;
  }
  if (command === '--version' || command === '-V') {
    write(`pgplay ${version()}\n`);
    return EXIT.OK;
  }
  if (rest.includes('--help') || rest.includes('-h')) return help([command]);
  switch (command) {
    case 'help':
      return help(rest);
    case 'run':
    case 'plan':
      return (await import('./commands/run.js')).runCommand(command, rest, interrupts.signal());
    case 'validate':
      return (await import('./commands/validate.js')).validateCommand(rest, write);
    case 'schema':
      return (await import('./commands/schema.js')).schemaCommand(rest, write);
    default: {
      const extra = extraCommands[command];
      if (extra) return extra(rest, write, interrupts.signal());
      throw usage(`unknown command "${command}"`);
    }
  }
}

function help(args: string[]): number {
  const text = args[0] ? COMMAND_HELP[args[0]] : MAIN_HELP;
  if (!text) throw usage(`no help for "${args[0]}"`);
  write(text);
  return EXIT.OK;
}

/**
 * Every error leaves as a message without a stack trace, unless PGPLAY_DEBUG=1; and through the
 * process-wide redactor, which knows every secret the run resolved (an error may quote one).
 */
export function report(e: unknown): number {
  const debug = process.env.PGPLAY_DEBUG === '1';
  const redactor = processRedactor();
  const err = (text: string) => void process.stderr.write(redactor.redact(text));
  if (e instanceof PgplayErrors) {
    for (const one of e.errors) err(`error: ${one.format()}\n`);
    err(`${e.errors.length} error${e.errors.length === 1 ? '' : 's'}\n`);
    return e.exitCode;
  }
  if (e instanceof PgplayError) {
    err(`error: ${e.format()}\n`);
    if (debug && e.cause) err(`${(e.cause as Error).stack ?? e.cause}\n`);
    return e.exitCode;
  }
  const internal = e as Error;
  err(`internal error: ${internal?.message ?? String(e)}\n`);
  if (debug) err(`${internal?.stack ?? ''}\n`);
  else err('  (set PGPLAY_DEBUG=1 for a stack trace)\n');
  return EXIT.FAILED;
}

main(process.argv.slice(2)).then(
  (code) => endProcess(code),
  (e) => endProcess(report(e)),
);
