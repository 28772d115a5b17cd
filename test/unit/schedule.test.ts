import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleCommand } from '../../src/cli/commands/schedule.js';
import { systemdWord } from '../../src/schedule/systemd.js';

const INVENTORY = resolve('test/fixtures/valid/inventory.yml');

async function schedule(args: string[]): Promise<string> {
  let out = '';
  const code = await scheduleCommand(args, (t) => void (out += t));
  expect(code).toBe(0);
  return out;
}

describe('pgplay schedule', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-schedule-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--install writes a service and timer pair that systemd-analyze verify accepts', async () => {
    const out = await schedule([
      'nightly-backup', '-i', INVENTORY, '--every', 'daily', '--at', '01:30', '-p', 'type=full',
      '--install', '--unit-dir', dir, '--state-dir', '/var/lib/pgplay state', '--environment-file', '/etc/pgplay/main.env', '--randomized-delay', '15m',
    ]);
    expect(out).toContain('systemctl daemon-reload && systemctl enable --now pgplay-main-nightly-backup.timer');
    const service = join(dir, 'pgplay-main-nightly-backup.service');
    const timer = join(dir, 'pgplay-main-nightly-backup.timer');
    expect((await stat(service)).mode & 0o777).toBe(0o644);
    const verify = await execa('systemd-analyze', ['verify', service, timer], { reject: false });
    expect(`${verify.stdout}${verify.stderr}`).toBe('');
    expect(verify.exitCode).toBe(0);
    const t = await readFile(timer, 'utf8');
    expect(t).toContain('OnCalendar=*-*-* 01:30:00\nPersistent=true\nRandomizedDelaySec=900\nUnit=pgplay-main-nightly-backup.service\n');
    const s = await readFile(service, 'utf8');
    expect(s).toMatch(/^Type=oneshot$/m);
    expect(s).toMatch(/^StandardOutput=journal$/m);
    expect(s).toContain('Environment="PGPLAY_STATE_DIR=/var/lib/pgplay state"');
    expect(s).toContain('EnvironmentFile=/etc/pgplay/main.env');
    expect(s).toMatch(new RegExp(`^ExecStart=${process.execPath}\\S* \\S+/dist/bundle/main.js run \\S+/playbooks/nightly-backup.yml -i ${INVENTORY} -p type=full$`, 'm'));
  });

  it('a weekly and an hourly timer parse as systemd calendars', async () => {
    for (const [args, calendar] of [
      [['--every', 'weekly', '--day', 'Sat', '--at', '02:05'], 'Sat *-*-* 02:05:00'],
      [['--every', 'hourly', '--at', '15'], '*-*-* *:15:00'],
    ] as const) {
      const out = await schedule(['nightly-backup', '-i', INVENTORY, ...args]);
      expect(out).toContain(`OnCalendar=${calendar}\n`);
      const r = await execa('systemd-analyze', ['calendar', calendar], { reject: false });
      expect(r.exitCode).toBe(0);
    }
  });

  it('--cron prints one crontab line with the same command, logged to syslog', async () => {
    const out = await schedule(['nightly-backup', '-i', INVENTORY, '--every', 'weekly', '--day', 'Mon', '--at', '03:45', '--cron', '-p', 'type=diff']);
    expect(out).toMatch(new RegExp(`^45 3 \\* \\* 1 CI=true ${process.execPath}\\S* \\S+/dist/bundle/main.js run \\S+/nightly-backup.yml -i ${INVENTORY} -p type=diff 2>&1 \\| logger -t pgplay-main-nightly-backup\\n$`));
  });

  it('bad input is refused before anything is written: a time, an unknown param, an engine mix', async () => {
    await expect(scheduleCommand(['nightly-backup', '-i', INVENTORY, '--every', 'daily', '--at', '24:00'], () => undefined)).rejects.toThrow(/--at "24:00" is not a time for --every daily/);
    await expect(scheduleCommand(['nightly-backup', '-i', INVENTORY, '--every', 'daily', '-p', 'tpye=full'], () => undefined)).rejects.toThrow(/unknown param "tpye"/);
    await expect(scheduleCommand(['nightly-backup', '-i', INVENTORY, '--every', 'monthly'], () => undefined)).rejects.toThrow(/--every must be one of hourly, daily, weekly/);
    await expect(scheduleCommand(['nightly-backup', '-i', INVENTORY, '--every', 'daily', '--cron', '--install'], () => undefined)).rejects.toThrow(/choose one/);
  });

  it('quotes ExecStart words the way systemd reads them', () => {
    expect(systemdWord('/usr/bin/node')).toBe('/usr/bin/node');
    expect(systemdWord('note=50% of $HOME')).toBe('"note=50%% of $$HOME"');
    expect(systemdWord('say "hi"')).toBe('"say \\"hi\\""');
  });
});
