/**
 * Service managers (issue 11 item 3). systemd cannot run on the test machine, so its path is proven
 * here: the postgres action runs through the engine over the fake transport and the commands it sends
 * are asserted (systemctl as root, pg_ctl promote as the OS user, the stop modes), as is the refusal of
 * a server that runs outside its unit. pg_ctlcluster runs for real on the rig (test/e2e/service-debian.test.ts).
 */
import { describe, expect, test } from 'vitest';
import postgresAction from '../../src/actions/postgres.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { parseYaml } from '../../src/load/yaml.js';
import { PgplayErrors } from '../../src/core/errors.js';
import type { Host } from '../../src/model/inventory.js';
import { FACTS_HEADER } from '../../src/postgres/facts.js';
import { serviceArgv, stopCommandText } from '../../src/postgres/service.js';
import type { FakeExecHandler } from '../../src/transports/fake.js';
import { harness, host as testHost } from './support/engine-harness.js';

function withService(h: Host, service: Host['postgres']['service'], extra: Partial<Host['postgres']> = {}): Host {
  return { ...h, postgres: { ...h.postgres, service, ...extra } };
}

describe('serviceArgv: what each manager runs', () => {
  const debian = withService(testHost('db2'), 'pg_ctlcluster', { layout: 'debian', cluster: 'main' });
  const systemd = withService(testHost('db2'), 'systemd', { serviceUnit: 'postgresql@15-main' });

  test('pg_ctlcluster: version, cluster, verb; the stop mode as -m; the step wait handed to pg_ctl', () => {
    expect(serviceArgv(debian, 'start', { waitMs: 90_000 })).toEqual([{ argv: ['pg_ctlcluster', '15', 'main', 'start', '--', '-t', '90'], as: 'owner' }]);
    expect(serviceArgv(debian, 'stop', { mode: 'immediate', waitMs: 60_000 })).toEqual([
      { argv: ['pg_ctlcluster', '-m', 'immediate', '15', 'main', 'stop', '--', '-t', '60'], as: 'owner' },
    ]);
    expect(serviceArgv(debian, 'restart', { waitMs: 60_000 })[0]!.argv).toEqual(['pg_ctlcluster', '-m', 'fast', '15', 'main', 'restart', '--', '-t', '60']);
    expect(serviceArgv(debian, 'reload', { waitMs: 60_000 })[0]!.argv).toEqual(['pg_ctlcluster', '15', 'main', 'reload']);
    expect(serviceArgv(debian, 'promote', { waitMs: 60_000 })[0]!.argv).toEqual(['pg_ctlcluster', '15', 'main', 'promote', '--', '-w', '-t', '60']);
  });

  test('systemd: systemctl as root; smart and immediate signal the main process; promote is pg_ctl promote', () => {
    expect(serviceArgv(systemd, 'start', { waitMs: 1000 })).toEqual([{ argv: ['systemctl', 'start', 'postgresql@15-main'], as: 'root' }]);
    expect(serviceArgv(systemd, 'stop', { waitMs: 1000 })).toEqual([{ argv: ['systemctl', 'stop', 'postgresql@15-main'], as: 'root' }]);
    expect(serviceArgv(systemd, 'stop', { mode: 'immediate', waitMs: 1000 })[0]!.argv).toEqual([
      'systemctl', 'kill', '--kill-who=main', '--signal=SIGQUIT', 'postgresql@15-main',
    ]);
    expect(serviceArgv(systemd, 'stop', { mode: 'smart', waitMs: 1000 })[0]!.argv).toContain('--signal=SIGTERM');
    expect(serviceArgv(systemd, 'restart', { mode: 'immediate', waitMs: 1000 }).map((c) => c.argv[1])).toEqual(['kill', 'start']);
    expect(serviceArgv(systemd, 'reload', { waitMs: 1000 })[0]!.argv).toEqual(['systemctl', 'reload', 'postgresql@15-main']);
    expect(serviceArgv(systemd, 'promote', { waitMs: 30_000 })).toEqual([
      { argv: ['/usr/lib/postgresql/15/bin/pg_ctl', 'promote', '-D', '/pg/db2', '-w', '-t', '30'], as: 'owner' },
    ]);
  });

  test('the split-brain fence hint names the command of the host\'s manager', () => {
    expect(stopCommandText(debian)).toBe('pg_ctlcluster -m fast 15 main stop (as postgres)');
    expect(stopCommandText(systemd)).toBe('systemctl stop postgresql@15-main');
    expect(stopCommandText(testHost('db2'))).toBe('/usr/lib/postgresql/15/bin/pg_ctl stop -m fast -D /pg/db2 (as postgres)');
  });
});

describe('inventory: postgres.service and serviceUnit', () => {
  const load = (text: string) => resolveHosts(parseYaml(text, 'inventory.yml').data as never);
  test('defaults: pg_ctlcluster on debian (a drill host pg_ctl), pg_ctl on pgdata; the unit is templated', () => {
    const hosts = load(`cluster: c
postgres: { version: 15, layout: debian }
hosts:
  db1: { address: 10.0.0.1, role: primary }
  db2: { address: 10.0.0.2, role: standby, upstream: db1, postgres: { service: systemd, cluster: replica } }
  db3: { address: 10.0.0.3, role: standby, upstream: db1, postgres: { layout: pgdata, service: systemd, serviceUnit: "pg-{{host}}-{{version}}" }, pgdata: /srv/pg }
  db4: { address: 10.0.0.4, role: standby, upstream: db1, postgres: { layout: pgdata }, pgdata: /srv/pg }
  drill1: { address: 10.0.0.5, role: drill, pgdata: /srv/drill }
`);
    expect(hosts.db1!.postgres.service).toBe('pg_ctlcluster');
    expect(hosts.db2!.postgres).toMatchObject({ service: 'systemd', serviceUnit: 'postgresql@15-replica' });
    expect(hosts.db3!.postgres).toMatchObject({ service: 'systemd', serviceUnit: 'pg-db3-15' });
    expect(hosts.db4!.postgres.service).toBe('pg_ctl');
    expect(hosts.drill1!.postgres.service).toBe('pg_ctl');
  });

  test('pg_ctlcluster without layout debian, and a serviceUnit no systemd host reads, are errors at their line', () => {
    let messages: string[] = [];
    try {
      messages = inventoryErrors(
        parseYaml(
          `cluster: c
postgres: { version: 15, service: pg_ctlcluster, serviceUnit: "x-{{version}}" }
hosts:
  db1: { address: 10.0.0.1, role: primary, pgdata: /srv/pg }
`,
          'inventory.yml',
        ),
      ).map((e) => e.format());
    } catch (e) {
      messages = (e as PgplayErrors).errors.map((x) => x.format());
    }
    expect(messages.join('\n')).toMatch(/inventory\.yml:2:\d+.*"db1" uses layout pgdata, which pg_ctlcluster cannot run/);
    expect(messages.join('\n')).toMatch(/inventory\.yml:2:\d+.*no host uses service systemd, so serviceUnit would be ignored/);
  });
});

/** A fake standby db2 under systemd: the facts script and systemctl answer from one mutable state. */
function systemdRig(state: { running: boolean; unitActive: boolean; inRecovery: boolean }) {
  const handler: FakeExecHandler = (argv, _options, transport) => {
    // PGDATA holds a PostgreSQL 15 cluster (a start reads PG_VERSION first).
    const version = `/pg/${transport.hostName}/PG_VERSION`;
    if (!transport.files.has(version)) transport.files.set(version, { data: Buffer.from('15\n'), mode: 0o600, owner: 'postgres', group: 'postgres' });
    if (argv[0] === '/bin/sh' && argv[3] === 'pgplay-identity') {
      // Each host's PGDATA is its own directory holding a cluster (the destruction guard reads it).
      const paths = argv.slice(5);
      const lines = paths.flatMap((p, i) => [`${i + 1}.exists=1`, `${i + 1}.directory=1`, `${i + 1}.key=boot:${transport.hostName}:${p}`, `${i + 1}.real=${p}`, `${i + 1}.pg_version=15`]);
      return { exitCode: 0, stdout: ['pgplay-identity 1', ...lines, 'end=1', ''].join('\n') };
    }
    if (argv[0] === '/bin/sh' && String(argv[2]).includes(FACTS_HEADER)) {
      // db1 is a stopped old primary; db2 follows `state`.
      const running = transport.hostName === 'db2' && state.running;
      const lines = [FACTS_HEADER, 'pgdata_dir=present', 'pg_version_file=15', `pg_ctl_status=${running ? 0 : 3}`];
      if (running) lines.push('pg_ctl_pid=4242', 'sql.version_num=150010', `sql.in_recovery=${state.inRecovery}`, 'sql.timeline=1');
      return { exitCode: 0, stdout: [...lines, 'end=1', ''].join('\n') };
    }
    if (argv[0] === 'systemctl' && argv[1] === 'is-active') return { exitCode: state.unitActive ? 0 : 3, stdout: state.unitActive ? 'active\n' : 'inactive\n' };
    if (argv[0] === 'systemctl' && (argv[1] === 'stop' || argv[1] === 'kill')) {
      state.running = false;
      state.unitActive = false;
      return { exitCode: 0 };
    }
    if (argv[0] === 'systemctl' && (argv[1] === 'start' || argv[1] === 'restart')) {
      state.running = true;
      state.unitActive = true;
      return { exitCode: 0 };
    }
    if (argv[0] === 'systemctl' && argv[1] === 'reload') return { exitCode: 0 };
    if (argv[0]?.endsWith('/pg_ctl') && argv[1] === 'promote') {
      state.inRecovery = false;
      return { exitCode: 0 };
    }
    return { exitCode: 0 };
  };
  // Real facts: the engine's reads (the one-primary invariant's before a start, which the start's check
  // takes) see the state the fake systemd changes, as on a machine.
  const h = harness(['db1', 'db2'], handler, 0, [], undefined, {
    actions: [postgresAction],
    realFacts: true,
    configure: (x) => {
      if (x.name === 'db2') x.postgres = { ...x.postgres, service: 'systemd', serviceUnit: 'postgresql@15-main' };
    },
  });
  const sent = () => h.calls.filter((c) => c.kind === 'exec' && c.host === 'db2' && !(c.argv![0] === '/bin/sh')).map((c) => `${c.become ?? '-'}: ${c.argv!.join(' ')}`);
  return { h, sent };
}

describe('the postgres action under systemd (engine over the fake transport)', () => {
  test('stop immediate, start, restart, reload and promote go through the unit; promote through pg_ctl as the OS user', async () => {
    const state = { running: true, unitActive: true, inRecovery: true };
    const { h, sent } = systemdRig(state);
    const result = await h.run({
      steps: [
        { id: 'stop', hosts: 'db2', postgres: { state: 'stopped', mode: 'immediate' } },
        { id: 'start', hosts: 'db2', postgres: { state: 'started' } },
        { id: 'restart', hosts: 'db2', postgres: { state: 'restarted' } },
        { id: 'reload', hosts: 'db2', postgres: { state: 'reloaded' } },
        { id: 'promote', hosts: 'db2', postgres: { state: 'promoted' } },
      ] as never,
    }, { yes: true });
    expect(h.events.filter((e) => e.type === 'step-result' && e.status === 'failed').map((e) => JSON.stringify(e))).toEqual([]);
    expect(result.status).toBe('ok');
    expect(state).toEqual({ running: true, unitActive: true, inRecovery: false });
    const commands = sent();
    expect(commands).toContain('root: systemctl kill --kill-who=main --signal=SIGQUIT postgresql@15-main');
    expect(commands).toContain('root: systemctl start postgresql@15-main');
    expect(commands).toContain('root: systemctl restart postgresql@15-main');
    expect(commands).toContain('root: systemctl reload postgresql@15-main');
    expect(commands).toContain('postgres: /usr/lib/postgresql/15/bin/pg_ctl promote -D /pg/db2 -w -t 60');
    // Never pg_ctl start/stop behind systemd's back.
    expect(commands.filter((c) => / (start|stop|restart|reload) -D /.test(c))).toEqual([]);
  });

  test('a server running outside its unit is refused (exit 3): systemctl stop would not reach it', async () => {
    const state = { running: true, unitActive: false, inRecovery: true };
    const { h, sent } = systemdRig(state);
    const result = await h.run({ steps: [{ id: 'stop', hosts: 'db2', postgres: { state: 'stopped' } }] as never });
    expect(result.exitCode).toBe(3);
    const failure = h.events.find((e) => e.type === 'step-result' && e.status === 'failed') as { error?: { message: string } } | undefined;
    expect(failure?.error?.message).toMatch(/runs \(pid 4242\) outside its systemd unit postgresql@15-main \(inactive\)/);
    expect(sent().filter((c) => !c.includes('is-active'))).toEqual([]);
    expect(state.running).toBe(true);
  });
});
