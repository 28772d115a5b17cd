/**
 * What pg_rewind needs (src/postgres/rewind.ts) and the rewind action's promise that a failed pg_rewind
 * never leaves a startable directory (src/actions/rewind.ts). The real pg_rewind path, and the fallback
 * when wal_log_hints is off, are proven on real PostgreSQL in test/e2e/dr-machines.test.ts (fixtures/dr-machines/rejoin.ts); here a
 * pg_rewind that fails is a script in a scratch bindir, run as postgres through the local transport.
 */
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import rewindAction from '../../src/actions/rewind.js';
import type { Host } from '../../src/model/inventory.js';
import { controlBlockers, parseControldata, parseRewindProbe, sourceBlockers } from '../../src/postgres/rewind.js';
import { localHost, tempDir, testContext } from './support/action-context.js';

const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7312345678901234567
Database cluster state:               shut down
pg_control last modified:             Thu Dec  3 16:00:00 2026
Latest checkpoint location:           0/3000028
Latest checkpoint's REDO location:    0/3000028
Latest checkpoint's REDO WAL file:    000000010000000000000003
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
wal_level setting:                    replica
wal_log_hints setting:                off
max_connections setting:              100
Data page checksum version:           0
`;

describe('pg_rewind prerequisites', () => {
  it('reads pg_controldata: system identifier, state, timeline, wal_log_hints, checksums', () => {
    expect(parseControldata(CONTROLDATA)).toEqual({ systemIdentifier: '7312345678901234567', state: 'shut down', timeline: 1, walLogHints: false, checksums: false });
    expect(parseControldata(CONTROLDATA.replace('version:           0', 'version:           1'))).toMatchObject({ checksums: true });
  });

  it('needs wal_log_hints or checksums, a clean shutdown and the same cluster', () => {
    const base = parseControldata(CONTROLDATA);
    expect(controlBlockers(base, '7312345678901234567')).toEqual([
      'wal_log_hints was off when the server last ran and the cluster has no data checksums (pg_rewind needs one of them)',
    ]);
    expect(controlBlockers({ ...base, walLogHints: true }, '7312345678901234567')).toEqual([]);
    expect(controlBlockers({ ...base, checksums: true, state: 'shut down in recovery' }, undefined)).toEqual([]);
    expect(controlBlockers({ ...base, walLogHints: true, state: 'in production' }, '7312345678901234567')).toEqual([
      'the cluster was not shut down cleanly (pg_control says "in production")',
    ]);
    expect(controlBlockers({ ...base, walLogHints: true }, '1')[0]).toContain('another cluster (system identifier 7312345678901234567');
  });

  it('needs a source that answers as a superuser or with the four functions, and is not in recovery', () => {
    expect(sourceBlockers({ user: 'postgres', superuser: true, functions: true, inRecovery: false }, 'db2')).toEqual([]);
    expect(sourceBlockers({ user: 'rewinder', superuser: false, functions: true, inRecovery: false }, 'db2')).toEqual([]);
    const no = sourceBlockers({ user: 'app', superuser: false, functions: false, inRecovery: true }, 'db2');
    expect(no[0]).toContain('app on db2 is no superuser and may not run pg_catalog.pg_ls_dir(text, boolean, boolean)');
    expect(no[1]).toBe('db2 is in recovery: pg_rewind\'s source must be the new primary');
  });

  it('parses the probe: a refused connection is a reason with psql\'s own words, a running server its pid', () => {
    const ok = parseRewindProbe(`pg_rewind=yes\npg_control=yes\n--- controldata\n${CONTROLDATA}--- source\npostgres|true|true|false\n--- source-exit=0\n`);
    expect(ok).toMatchObject({ binary: true, control: { walLogHints: false }, source: { user: 'postgres', superuser: true, inRecovery: false } });
    expect(ok.runningPid).toBeUndefined();
    const refused = parseRewindProbe(
      'pg_rewind=yes\nrunning=4242\npg_control=no\n--- controldata\n--- source\npsql: error: connection to server at "10.0.0.12", port 5432 failed: fe_sendauth: no password supplied\n--- source-exit=2\n',
    );
    expect(refused).toMatchObject({ binary: true, runningPid: 4242, sourceError: 'psql: error: connection to server at "10.0.0.12", port 5432 failed: fe_sendauth: no password supplied' });
    expect(refused.control).toBeUndefined();
  });
});

describe('the rewind action when pg_rewind fails', () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  /** A scratch PGDATA with a pg_control and a bindir whose pg_rewind exits `rc`, both owned by postgres. */
  async function scratch(rc: number) {
    const dir = await tempDir('rewind');
    cleanup = dir.cleanup;
    const pgdata = join(dir.path, 'data');
    const bindir = join(dir.path, 'bin');
    await mkdir(join(pgdata, 'global'), { recursive: true });
    await mkdir(bindir);
    await writeFile(join(pgdata, 'global', 'pg_control'), 'control');
    await writeFile(join(bindir, 'pg_rewind'), `#!/bin/sh\necho "pg_rewind: servers diverged at WAL location 0/3000000 on timeline 1" >&2\n${rc ? 'echo "pg_rewind: error: could not find previous WAL record at 0/2FFFF00" >&2\n' : 'echo "pg_rewind: Done!" >&2\n'}exit ${rc}\n`);
    await chmod(join(bindir, 'pg_rewind'), 0o755);
    const { stdout } = await execa('id', ['-u', 'postgres']);
    for (const p of [pgdata, join(pgdata, 'global'), join(pgdata, 'global', 'pg_control'), bindir]) await chown(p, Number(stdout), 0);
    const host = localHost({ name: 'db1', role: 'standby', pgdata, postgres: { ...localHost().postgres, bindir } });
    const source: Host = localHost({ name: 'db2', address: '127.0.0.2', role: 'primary' });
    const base = testContext({ host });
    const ctx = { ...base, hosts: { db1: host, db2: source } };
    const planned = { changed: true, data: { possible: true, reasons: [], rewound: false } };
    return { ctx, pgdata, planned };
  }

  it('removes global/pg_control, so the half-rewound directory can never start, and asks for the restore', async () => {
    const { ctx, pgdata, planned } = await scratch(1);
    const out = await rewindAction.apply(ctx, { source: 'db2' }, planned);
    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(false);
    expect(out.data).toMatchObject({ rewound: false, restore_needed: true, rewind_failed: true });
    expect(String(out.data!.error)).toContain('could not find previous WAL record');
    expect(out.msg).toContain('removed');
  });

  it('keeps pg_control when pg_rewind succeeds', async () => {
    const { ctx, pgdata, planned } = await scratch(0);
    const out = await rewindAction.apply(ctx, { source: 'db2' }, planned);
    expect(existsSync(join(pgdata, 'global', 'pg_control'))).toBe(true);
    expect(out.data).toMatchObject({ rewound: true, restore_needed: false });
  });
});
