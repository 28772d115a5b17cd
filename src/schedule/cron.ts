/**
 * A crontab line for a schedule (the user's crontab: no user field). Output goes to syslog through
 * logger, tagged with the schedule's name; cron has no randomized delay or catch-up, say so in README.
 */
import type { Schedule } from './spec.js';
import { DAYS } from './spec.js';

/** One word for /bin/sh: single-quoted unless it is plainly safe; % is special in crontab and escaped. */
function shWord(word: string): string {
  const quoted = /^[A-Za-z0-9_@+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
  return quoted.replace(/%/g, '\\%');
}

/** The five time fields of a schedule (crontab and Kubernetes CronJob share them). */
export function cronFields(s: Schedule): string {
  const dow = s.every === 'weekly' ? String((DAYS.indexOf(s.day) + 1) % 7) : '*';
  const hour = s.every === 'hourly' ? '*' : String(s.hour);
  return `${s.minute} ${hour} * * ${dow}`;
}

export function cronLine(s: Schedule): string {
  const env = Object.entries({ CI: 'true', ...s.env }).map(([k, v]) => `${k}=${shWord(v)}`);
  return `${cronFields(s)} ${[...env, ...s.argv.map(shWord)].join(' ')} 2>&1 | logger -t ${s.name}\n`;
}
