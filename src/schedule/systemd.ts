/**
 * A systemd service and timer pair for a schedule: the service is a oneshot that runs pgplay with its
 * output in the journal (systemd never starts a oneshot again while it runs, and pgplay's cluster lock
 * excludes runs started elsewhere); the timer is Persistent (a run missed while the machine was down
 * happens at boot) with a randomized delay so that a fleet's clusters do not all start at once.
 * Checked in tests by `systemd-analyze verify`.
 */
import type { Schedule } from './spec.js';

/** One ExecStart word in systemd's syntax: quoted, with % and $ (specifiers, variables) escaped. */
export function systemdWord(word: string): string {
  const escaped = word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) && !word.includes('%') ? escaped : `"${escaped}"`;
}

/** An Environment= assignment: quoted, % escaped (specifiers); unlike ExecStart, $ is not expanded there. */
function environmentWord(assignment: string): string {
  const escaped = assignment.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%');
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(assignment) ? escaped : `"${escaped}"`;
}

export function onCalendar(s: Schedule): string {
  const mm = String(s.minute).padStart(2, '0');
  const hh = String(s.hour).padStart(2, '0');
  if (s.every === 'hourly') return `*-*-* *:${mm}:00`;
  if (s.every === 'weekly') return `${s.day} *-*-* ${hh}:${mm}:00`;
  return `*-*-* ${hh}:${mm}:00`;
}

export function systemdUnits(s: Schedule): { service: { name: string; text: string }; timer: { name: string; text: string } } {
  const env = Object.entries(s.env).map(([k, v]) => `Environment=${environmentWord(`${k}=${v}`)}`);
  const service = [
    '[Unit]',
    `Description=${s.description}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    // No terminal: a step that needs confirmation refuses (exit 3) instead of waiting for an answer.
    'Environment=CI=true',
    ...env,
    // The inventory's {env: NAME} secrets: from a file, never written into the unit.
    ...(s.environmentFile ? [`EnvironmentFile=${s.environmentFile}`] : []),
    `ExecStart=${s.argv.map(systemdWord).join(' ')}`,
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=${s.name}`,
    // pgplay's own Ctrl-C handling: SIGINT lets running steps finish within the grace period.
    'KillSignal=SIGINT',
    'TimeoutStopSec=60',
    '',
  ].join('\n');
  const timer = [
    '[Unit]',
    `Description=Schedule of ${s.description}`,
    '',
    '[Timer]',
    `OnCalendar=${onCalendar(s)}`,
    'Persistent=true',
    ...(s.randomizedDelaySeconds > 0 ? [`RandomizedDelaySec=${s.randomizedDelaySeconds}`] : []),
    `Unit=${s.name}.service`,
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
  return { service: { name: `${s.name}.service`, text: service }, timer: { name: `${s.name}.timer`, text: timer } };
}
