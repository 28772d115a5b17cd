import { PgplayError } from '../../core/errors.js';
import { InfoParseError, parseInfoJson, type BackupEntry, type StanzaInfo } from '../../postgres/pgbackrest-info.js';
import type { ActionContext, Outcome } from '../types.js';
import type { PgbackrestInput } from './input.js';
import type { PgbackrestRunner } from './runner.js';

/** One pgBackRest command's part of the action: check reads only, apply acts (absent: read-only command). */
export interface CommandHandler {
  check(ctx: ActionContext, input: PgbackrestInput, runner: PgbackrestRunner): Promise<Outcome>;
  apply?(ctx: ActionContext, input: PgbackrestInput, runner: PgbackrestRunner, planned: Outcome): Promise<Outcome>;
}

/** The runner's stanza as `info --output=json` reports it (read-only; works before stanza-create). */
export async function readInfo(runner: PgbackrestRunner): Promise<StanzaInfo> {
  const r = await runner.run('info', ['--output=json'], { logLevel: 'warn' });
  let stanzas: StanzaInfo[];
  try {
    stanzas = parseInfoJson(r.stdout);
  } catch (e) {
    if (e instanceof InfoParseError) throw new PgplayError({ code: 'STEP_FAILED', message: `${e.message} (${r.stdout.slice(0, 200)})` });
    throw e;
  }
  const s = stanzas.find((x) => x.name === runner.stanza);
  if (!s) throw new PgplayError({ code: 'STEP_FAILED', message: `pgbackrest info did not report stanza ${runner.stanza}` });
  return s;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)}${units[i]}`;
}

export function describeBackup(b: BackupEntry): string {
  return `${b.type} backup ${b.label} (${formatBytes(b.size)} database, ${formatBytes(b.repo_delta)} added to the repository)`;
}

/** "a, b and c" for messages. */
export function listing(items: string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}
