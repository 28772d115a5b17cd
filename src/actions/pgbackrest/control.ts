/**
 * stop / start: pgBackRest's stop file (<lock-path>/<stanza>.stop, or all.stop for every stanza). The
 * state is read from the file itself, in the lock path pgBackRest resolves from its configuration.
 */
import { posix } from 'node:path';
import { PgplayError } from '../../core/errors.js';
import type { ActionContext } from '../types.js';
import type { CommandHandler } from './common.js';
import type { PgbackrestInput } from './input.js';
import type { PgbackrestRunner } from './runner.js';

interface StopState {
  lockPath: string;
  stanzaFile: string;
  allFile: string;
  stanzaStopped: boolean;
  allStopped: boolean;
}

async function stopState(ctx: ActionContext, input: PgbackrestInput, runner: PgbackrestRunner): Promise<StopState> {
  const lockPath = await runner.effectiveOption('stop', 'lock-path', { noStanza: input.all });
  if (!lockPath) throw new PgplayError({ code: 'STEP_FAILED', message: 'pgbackrest did not report its lock-path' });
  const stanzaFile = posix.join(lockPath, `${runner.stanza}.stop`);
  const allFile = posix.join(lockPath, 'all.stop');
  const become = ctx.host.postgres.osUser;
  const [s, a] = await Promise.all([ctx.transport.stat(stanzaFile, { become }), ctx.transport.stat(allFile, { become })]);
  return { lockPath, stanzaFile, allFile, stanzaStopped: s.exists, allStopped: a.exists };
}

function scope(input: PgbackrestInput, runner: PgbackrestRunner): string {
  return input.all ? 'all stanzas' : `stanza ${runner.stanza}`;
}

function data(st: StopState, input: PgbackrestInput): Record<string, unknown> {
  return { lock_path: st.lockPath, stop_file: input.all ? st.allFile : st.stanzaFile, stopped: input.all ? st.allStopped : st.stanzaStopped || st.allStopped, all_stopped: st.allStopped };
}

export const stop: CommandHandler = {
  async check(ctx, input, runner) {
    const st = await stopState(ctx, input, runner);
    if (st.allStopped) return { changed: false, msg: `pgBackRest is already stopped for all stanzas (${st.allFile})`, data: data(st, input) };
    if (!input.all && st.stanzaStopped) return { changed: false, msg: `pgBackRest is already stopped for stanza ${runner.stanza} (${st.stanzaFile})`, data: data(st, input) };
    return { changed: true, msg: `would stop pgBackRest for ${scope(input, runner)} (creates ${input.all ? st.allFile : st.stanzaFile})` };
  },
  async apply(ctx, input, runner) {
    await runner.run('stop', input.force ? ['--force'] : [], { noStanza: input.all });
    const st = await stopState(ctx, input, runner);
    const file = input.all ? st.allFile : st.stanzaFile;
    if (!(input.all ? st.allStopped : st.stanzaStopped)) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `pgbackrest stop succeeded but ${file} does not exist` });
    }
    return { changed: true, msg: `stopped pgBackRest for ${scope(input, runner)} (${file})`, data: data(st, input) };
  },
};

export const start: CommandHandler = {
  async check(ctx, input, runner) {
    const st = await stopState(ctx, input, runner);
    if (!input.all && st.allStopped) {
      throw new PgplayError({
        code: 'STEP_FAILED',
        message: `pgBackRest is stopped for all stanzas (${st.allFile}); starting stanza ${runner.stanza} alone does not lift that`,
        hint: 'use all: true to remove the global stop file',
      });
    }
    const stopped = input.all ? st.allStopped : st.stanzaStopped;
    if (!stopped) return { changed: false, msg: `pgBackRest is not stopped for ${scope(input, runner)}`, data: data(st, input) };
    return { changed: true, msg: `would start pgBackRest for ${scope(input, runner)} (removes ${input.all ? st.allFile : st.stanzaFile})` };
  },
  async apply(ctx, input, runner) {
    await runner.run('start', [], { noStanza: input.all });
    const st = await stopState(ctx, input, runner);
    if (input.all ? st.allStopped : st.stanzaStopped) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `pgbackrest start succeeded but ${input.all ? st.allFile : st.stanzaFile} still exists` });
    }
    return { changed: true, msg: `started pgBackRest for ${scope(input, runner)}`, data: data(st, input) };
  },
};
