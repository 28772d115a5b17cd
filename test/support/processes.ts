import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * Whether a process group still has a live member. A test that wants to know that a command was
 * killed (not merely that it has not finished yet) records the command's process group from inside
 * the command (`ps -o pgid= -p $$`) and waits here for the group to be empty: a command that was not
 * killed keeps its group alive for as long as it runs, so the wait fails instead of passing early.
 */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    const [state, , pgrp] = afterComm(stat);
    // A zombie is dead; it lingers only until its (re)parent reaps it.
    if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
  }
  return members;
}

/** The fields of a /proc/<pid>/stat line after the command name: state, ppid, pgrp, ... */
function afterComm(stat: string): string[] {
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The parent of a process, or undefined once it is gone. */
export async function parentPid(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const ppid = Number(afterComm(stat)[1]);
  return stat && ppid > 0 ? ppid : undefined;
}

/** Resolves once no live process remains in any of the groups; rejects naming the survivors after timeoutMs. */
export async function groupsGone(pgids: number[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pgids.flatMap((g) => groupMembers(g).map((p) => `${p} (group ${g}: ${commandLine(p)})`));
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still running ${timeoutMs} ms later, not killed: ${alive.join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The process groups a command recorded, one number a line (see groupMembers). */
export function recordedGroups(file: string): number[] {
  const numbers = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
  if (numbers.length === 0) throw new Error(`${file} records no process group`);
  return numbers;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}
