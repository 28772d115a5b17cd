import { describe, expect, it } from 'vitest';
import { factsScript, parseFacts, FACTS_HEADER } from '../../src/postgres/facts.js';
import type { Host } from '../../src/model/inventory.js';

const host: Host = {
  name: 'db1',
  address: '10.0.0.11',
  role: 'primary',
  pgdata: "/var/lib/postgresql/15/it's main",
  postgres: { version: 15, bindir: '/usr/lib/postgresql/15/bin', port: 5432, osUser: 'postgres', superuser: 'postgres', socketDir: '/var/run/postgresql', settings: {}, hba: [] },
  connection: { transport: 'ssh' },
  vars: {},
};

const runningPrimary = [
  'noise from a login banner',
  FACTS_HEADER,
  'hostname=db1',
  'user=postgres',
  'pgdata_dir=present',
  'pgdata_real=/var/lib/postgresql/15/main',
  'pg_version_file=15',
  'postmaster_pid=4242',
  'pid_alive=1',
  'pg_ctl_status=0',
  'pg_ctl_pid=4242',
  'running=1',
  'control.state=in production',
  'control.timeline=1',
  'control.system_identifier=7312345678901234567',
  'sql.version_num=150004',
  'sql.data_directory=/var/lib/postgresql/15/main',
  'sql.port=5432',
  'sql.in_recovery=false',
  'sql.system_identifier=7312345678901234567',
  'sql.timeline=2',
  'sql.current_lsn=0/3000148',
  'sql.receive_lsn=',
  'sql.replay_lsn=',
  'sql.replay_paused=false',
  'sql.client={"application_name" : "db2", "client_addr" : "10.0.0.12", "state" : "streaming", "sync_state" : "async", "replay_lsn" : "0/3000060", "lag_bytes" : 232}',
  'sql.client={"application_name" : "pg_basebackup", "client_addr" : null, "state" : "backup", "sync_state" : "async", "replay_lsn" : null, "lag_bytes" : null}',
  'data_directory_real=/var/lib/postgresql/15/main',
  'end=1',
  '',
].join('\n');

describe('parseFacts', () => {
  it('a running primary: SQL values win over pg_control (timeline right after a promotion)', () => {
    expect(parseFacts(runningPrimary)).toEqual({
      reachable: true,
      hostname: 'db1',
      user: 'postgres',
      pgdata_present: true,
      pgdata_version: 15,
      running: true,
      pid: 4242,
      version: 15,
      server_version_num: 150004,
      in_recovery: false,
      timeline: 2,
      system_identifier: '7312345678901234567',
      cluster_state: 'in production',
      current_lsn: '0/3000148',
      replication_clients: [
        { application_name: 'db2', client_addr: '10.0.0.12', state: 'streaming', sync_state: 'async', replay_lsn: '0/3000060', lag_bytes: 232 },
        { application_name: 'pg_basebackup', client_addr: null, state: 'backup', sync_state: 'async', replay_lsn: null, lag_bytes: null },
      ],
    });
  });

  it('a stopped standby read from the raw pg_control fields', () => {
    const out = [FACTS_HEADER, 'hostname=db2', 'user=postgres', 'pgdata_dir=present', 'pg_version_file=11', 'running=0',
      'control.system_identifier=7312345678901234567', 'control.state_code=2', 'control.timeline=3', 'end=1'].join('\n');
    expect(parseFacts(out)).toEqual({
      reachable: true,
      hostname: 'db2',
      user: 'postgres',
      pgdata_present: true,
      pgdata_version: 11,
      running: false,
      version: 11,
      timeline: 3,
      system_identifier: '7312345678901234567',
      cluster_state: 'shut down in recovery',
    });
  });

  it('pg_ctl status is the word on running, even with a stale postmaster.pid', () => {
    const out = [FACTS_HEADER, 'pgdata_dir=present', 'pg_version_file=15', 'postmaster_pid=99', 'pid_alive=0', 'pg_ctl_status=3', 'running=0', 'end=1'].join('\n');
    const f = parseFacts(out);
    expect(f.running).toBe(false);
    expect(f.pid).toBeUndefined();
  });

  it('no PGDATA, an unreadable PGDATA, a failing psql, a server on another data directory', () => {
    expect(parseFacts([FACTS_HEADER, 'pgdata_dir=absent', 'running=0', 'end=1'].join('\n'))).toEqual({ reachable: true, pgdata_present: false, running: false });
    expect(parseFacts([FACTS_HEADER, 'pgdata_dir=unreadable', 'running=0', 'end=1'].join('\n')).error).toBe(
      'PGDATA is not readable by the user the facts ran as',
    );
    const psqlFailed = parseFacts([FACTS_HEADER, 'pgdata_dir=present', 'pg_version_file=15', 'pg_ctl_status=0', 'pg_ctl_pid=7', 'running=1',
      'psql_error=psql: error: FATAL:  role "x" does not exist ', 'end=1'].join('\n'));
    expect(psqlFailed).toMatchObject({ running: true, pid: 7, version: 15, error: 'psql: psql: error: FATAL:  role "x" does not exist' });
    expect(psqlFailed.in_recovery).toBeUndefined();
    const other = parseFacts(runningPrimary.replace('data_directory_real=/var/lib/postgresql/15/main', 'data_directory_real=/srv/other'));
    expect(other.error).toBe('the server that answered on port 5432 serves /srv/other, not this PGDATA (/var/lib/postgresql/15/main)');
  });

  it('output without the header (a broken shell, a wrong host) is unreachable with the reason', () => {
    expect(parseFacts('sh: 1: Syntax error\n')).toEqual({
      reachable: false,
      error: 'the facts script printed no "pgplay-facts 1" header: sh: 1: Syntax error',
      pgdata_present: false,
      running: false,
    });
    expect(parseFacts(runningPrimary.replace('end=1\n', '')).error).toBe('the facts output is truncated');
  });
});

describe('factsScript', () => {
  it('quotes every inventory value for sh and picks the replay-pause function by the on-disk major', () => {
    const s = factsScript(host);
    expect(s).toContain(`PGDATA='/var/lib/postgresql/15/it'\\''s main'`);
    expect(s).toContain(`echo '${FACTS_HEADER}'`);
    expect(s).toContain('pg_get_wal_replay_pause_state()');
    expect(s).toContain('pg_is_wal_replay_paused()');
    expect(s).toMatch(/-ge 14 \]/);
  });
});
