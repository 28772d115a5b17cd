/**
 * The break-glass export: `pgplay plan <playbook> --export-shell FILE` writes the plan as a POSIX shell
 * script, for when pgplay itself cannot run. The plan runs as usual (check only, nothing changes); for
 * each step and host the action says what apply would run (Action.exportShell). The script is cut into
 * parts, one per stretch of consecutive steps on the same host, in plan order: a human runs
 * `sh FILE 1` on the first part's host, then `sh FILE 2` on the next one's, and so on (the order across
 * hosts is the plan's: a standby's slot on the primary before it starts, the wait on the upstream
 * after). Read-only checks (assert, guard queries) are comments; a step the plan found nothing to do
 * for keeps its commands commented out, for review; a step skipped by its `when` says so.
 *
 * It is refused (exit 2), and no file is written, when a step's action cannot export (naming the step
 * and host), or when any secret value would appear in the text: secrets are environment references
 * ("$PGPLAY_REPLICATION_PASSWORD") that each part checks are set.
 */
import { PgplayError } from '../core/errors.js';
import type { Redactor } from '../core/redact.js';
import type { Host } from '../model/inventory.js';
import type { Step } from '../model/playbook.js';
import type { Action, ActionContext, Outcome, ShellExport } from './action.js';

interface Entry {
  step: string;
  name: string;
  host: string;
  /** Live commands (the plan would change something), or only comments. */
  live: string[];
  comments: string[];
  env: string[];
}

export class ShellExportRecorder {
  private readonly entries: Entry[] = [];
  private readonly problems: string[] = [];
  private hosts: Record<string, Host> = {};
  private cluster = '';

  constructor(private readonly redactor: Redactor) {}

  skipped(step: Step, host: string, why: string): void {
    this.entries.push({ step: step.id, name: step.name ?? step.id, host, live: [], comments: [`skipped at plan time (${why.replace(/\s+/g, ' ')})`], env: [] });
  }

  async planned(step: Step, host: string, action: Action<any>, ctx: ActionContext, input: unknown, planned: Outcome): Promise<void> {
    this.hosts = ctx.hosts;
    this.cluster = ctx.inventory.cluster;
    if (!action.exportShell) {
      this.problems.push(`step ${step.id} on ${host}: the ${action.name} action cannot be exported to shell`);
      return;
    }
    let exported: ShellExport;
    try {
      exported = await action.exportShell(ctx, input, planned);
    } catch (e) {
      this.problems.push(`step ${step.id} on ${host}: ${(e as Error).message}`);
      return;
    }
    const commands = exported.commands ?? [];
    const comments = [...(planned.msg ? [`plan: ${planned.msg.replace(/\s+/g, ' ')}`] : []), ...(exported.comments ?? [])];
    const changes = planned.changed || exported.runAlways === true;
    const entry: Entry = { step: step.id, name: step.name ?? step.id, host, live: changes ? commands : [], comments, env: exported.env ?? [] };
    if (!changes && commands.length > 0) entry.comments.push('nothing to do at plan time; the commands, for review:', ...commands.map((c) => `  ${c}`));
    // A secret value in the text: refuse, naming the step (the redactor knows every secret the run resolved).
    const text = [...entry.live, ...entry.comments].join('\n');
    if (this.redactor.holdsSecret(text)) {
      this.problems.push(`step ${step.id} on ${host}: its commands would hold a secret value; it cannot be exported`);
      return;
    }
    this.entries.push(entry);
  }

  /** The script, or a PgplayError naming every step that could not be exported. */
  render(o: { playbook: string; file: string }): string {
    if (this.problems.length > 0) {
      throw new PgplayError({
        code: 'USAGE',
        message: `cannot export the plan to shell: ${this.problems.join('; ')}`,
        hint: 'nothing was written; run pgplay itself, or do those steps by hand following pgplay docs',
      });
    }
    const parts: { host: string; entries: Entry[] }[] = [];
    const preamble: Entry[] = [];
    for (const entry of this.entries) {
      const last = parts[parts.length - 1];
      if (entry.live.length === 0) {
        // Comments never start a part: they go with the part running then (before the first: the header).
        if (last) last.entries.push(entry);
        else preamble.push(entry);
      } else if (last && last.host === entry.host) last.entries.push(entry);
      else parts.push({ host: entry.host, entries: [entry] });
    }
    const where = (host: string) => `${host} (${this.hosts[host]?.address ?? 'unknown address'})`;
    const comment = (text: string, indent = '') => `${indent}# ${text}`;
    const env = (entries: Entry[]) => [...new Set(entries.flatMap((e) => e.env))].sort();
    const out = [
      '#!/bin/sh',
      comment(`pgplay break-glass export of playbook ${o.playbook} for cluster ${this.cluster}, made by pgplay plan`),
      comment(`at ${new Date().toISOString()} from the state the plan found then. Review it before running it.`),
      comment('Run each part on its host, as root, in this order (a part stops at the first failing command):'),
      ...parts.map((p, i) => comment(`  part ${i + 1}: on ${where(p.host)}: sh ${o.file} ${i + 1}`)),
      ...(env(this.entries).length
        ? [comment(`Secrets come from the environment, never from this file: export ${env(this.entries).join(', ')} first.`)]
        : []),
      ...(preamble.length ? [comment('Checks before the first part (pgplay refuses when they do not hold):')] : []),
      ...preamble.flatMap((e) => [comment(`[${e.step} on ${e.host}] ${e.name}`), ...e.comments.map((c) => comment(`  ${c}`))]),
      'set -eu',
      'case "${1:-}" in',
    ];
    parts.forEach((p, i) => {
      out.push(`${i + 1})`, comment(`---- part ${i + 1} of ${parts.length}: on ${where(p.host)} ----`, '  '));
      for (const name of env(p.entries)) out.push(`  : "\${${name}:?export ${name} (a secret the inventory names) before running this part}"`);
      for (const e of p.entries) {
        const on = e.host === p.host ? '' : ` (on ${e.host}: not this part's host)`;
        out.push(comment(`step ${e.step}${on}: ${e.name}`, '  '), ...e.comments.map((c) => comment(`  ${c}`, '  ')));
        // Here-document bodies must not be indented: they are written as they are.
        out.push(...indentCommands(e.live));
      }
      out.push('  ;;');
    });
    out.push(
      '*)',
      `  echo "usage: sh $0 PART: run parts 1 to ${parts.length} in order, each on its host (see the head of this file)" >&2`,
      '  exit 2',
      '  ;;',
      'esac',
      '',
    );
    return out.join('\n');
  }
}

/** Indents command lines by two spaces, except the bodies and delimiters of here-documents. */
function indentCommands(lines: string[]): string[] {
  const out: string[] = [];
  let delimiter: string | undefined;
  for (const line of lines) {
    if (delimiter !== undefined) {
      out.push(line);
      if (line === delimiter) delimiter = undefined;
      continue;
    }
    out.push(`  ${line}`);
    const m = /<<'([A-Za-z0-9_]+)'$/.exec(line);
    if (m) delimiter = m[1];
  }
  return out;
}
