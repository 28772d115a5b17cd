/**
 * Barman 3.4's JSON and --nagios output read into what procedures use, and its failures mapped to
 * clear messages. The fixtures in fixtures/barman/ are real output of Barman 3.4 (Debian bookworm),
 * captured on the rig of test/e2e/barman-machines.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupEntry } from '../../src/barman/archive.js';
import { barmanFailure, errorLines } from '../../src/barman/errors.js';
import { messagesOf, parseCheck, parseJsonOutput, parseListBackups, parseNagios, parseShowBackup, parseWalListing, walsDirectory } from '../../src/barman/output.js';
import { barmanSupports, parseBarmanVersion } from '../../src/barman/versions.js';

const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures', 'barman', name), 'utf8');
const ctx = { command: 'backup', server: 'main', configFile: '/etc/barman.d/main.conf', repoHost: 'bk1' };

describe('barman output', () => {
  it('list-backups: the server\'s backups, newest first, with status and retention', () => {
    const backups = parseListBackups(parseJsonOutput(fixture('list-backups.json')), 'main');
    expect(backups.length).toBe(2);
    expect(backups.map((b) => b.status)).toEqual(['DONE', 'DONE']);
    expect(backups[0]!.id > backups[1]!.id).toBe(true);
    // Barman 3.4 shows the newest as "-" in list-backups (show-backup says VALID), the older as OBSOLETE under REDUNDANCY 1.
    expect(backups[0]!.retention).toBe('-');
    expect(backups[1]!.retention).toBe('OBSOLETE');
    expect(backups[0]!.end).toBeGreaterThan(1_700_000_000);
    expect(backups[0]!.sizeBytes).toBeGreaterThan(0);
    expect(parseListBackups(parseJsonOutput(fixture('list-backups.json')), 'other')).toEqual([]);
  });

  it('show-backup: WAL and LSN range, times, timeline, PGDATA, version', () => {
    const d = parseShowBackup(parseJsonOutput(fixture('show-backup.json')), 'main');
    expect(d.status).toBe('DONE');
    expect(d.beginWal).toMatch(/^[0-9A-F]{24}$/);
    expect(d.endWal! >= d.beginWal!).toBe(true);
    expect(d.beginLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(d.timeline).toBe(1);
    expect(d.pgdata).toBe('/tmp/barman-capture/pg');
    expect(d).toMatchObject({ id: '20261203T205952', beginWal: '000000010000000000000007', beginLsn: '0/7000028', endLsn: '0/8000000', version: 150018 });
    expect(d.version).toBeGreaterThanOrEqual(150000);
    expect(d.endTime! >= d.beginTime!).toBe(true);
    const entry = backupEntry(d);
    expect(entry).toMatchObject({ label: d.id, type: 'full', wal_start: d.beginWal, lsn_stop: d.endLsn });
  });

  it('check: every check by its JSON name, the failed ones with their hint', () => {
    const results = parseCheck(parseJsonOutput(fixture('check-failed.json')), 'main');
    const failed = results.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toEqual(['continuous_archiving', 'minimum_redundancy_requirements']);
    expect(results.find((c) => c.name === 'minimum_redundancy_requirements')?.hint).toBe('have 0 backups, expected at least 1');
    // Before the slot and receive-wal exist (the first run of nightly-backup before its create-slot step).
    const before = parseCheck(parseJsonOutput(fixture('check-before.json')), 'main').filter((c) => !c.ok).map((c) => c.name);
    expect(before).toEqual(['minimum_redundancy_requirements', 'receive_wal_running', 'replication_slot', 'wal_archive']);
    expect(results.find((c) => c.name === 'postgresql')?.ok).toBe(true);
  });

  it('check --nagios: the failed checks of the server from the summary line', () => {
    const n = parseNagios(fixture('check-nagios.txt'), 'main');
    expect(n.ok).toBe(false);
    expect(n.failed).toEqual(['minimum redundancy requirements', 'continuous archiving']);
    expect(parseNagios('BARMAN OK - Ready to serve the Espresso backup for main\n', 'main')).toMatchObject({ ok: true, failed: [] });
  });

  it('show-servers: the wals_directory; a listing of it: segments only, compressed or not', () => {
    expect(walsDirectory(parseJsonOutput('{"main": {"wals_directory": "/var/lib/barman/main/wals", "active": true}}'), 'main')).toBe('/var/lib/barman/main/wals');
    const segs = parseWalListing(fixture('wals.txt'));
    expect(segs.map((s) => s.name)).toEqual(['000000010000000000000005', '000000010000000000000006', '000000010000000000000007']);
    expect(segs[0]!.time).toBe(1796331591);
    // Compressed segments, history and .backup files (not in this capture) are read, or left out, by name.
    expect(parseWalListing('000000010000000000000002.gz 1.5\n00000002.history 1\n000000010000000000000002.00000028.backup 2\n').map((s) => s.name)).toEqual(['000000010000000000000002']);
  });
});

describe('barman backup and keep', () => {
  it('backup: its id and status DONE; the messages it printed', () => {
    const json = parseJsonOutput(fixture('backup.json'));
    expect(json.backup_id).toBe('20261203T205950');
    expect(json.status).toBe('DONE');
    expect(messagesOf(json).info[0]).toMatch(/^Starting backup using postgres method for server main/);
    expect(parseJsonOutput(fixture('keep-status.json'))).toEqual({ main: { keep_status: { description: 'Keep', message: 'full' } } });
  });
});

describe('barman errors', () => {
  it('a backup barman refuses to start (real output) points at barman check', () => {
    const json = parseJsonOutput(fixture('backup-impossible.json'));
    const e = barmanFailure(1, errorLines('', '', messagesOf(json).errors), ctx);
    expect(e.message).toBe("barman backup failed (a check of server main fails): Impossible to start the backup. Check the log for more details, or run 'barman check main'");
    expect(e.hint).toContain('barman check');
  });

  it('an unknown server (real output): what it means and that nightly-backup writes its config', () => {
    const json = parseJsonOutput(fixture('unknown-server.json'));
    const e = barmanFailure(1, errorLines('', '', messagesOf(json).errors), ctx);
    expect(e.message).toBe("barman backup failed (Barman has no server main on bk1): Unknown server 'main'");
    expect(e.hint).toContain('/etc/barman.d/main.conf');
    expect(e.code).toBe('STEP_FAILED');
  });

  it('SSH refused, a lock, a connection failure and an unknown message', () => {
    expect(barmanFailure(1, errorLines('', 'ERROR: Permission denied (publickey).\n'), ctx).message).toContain('SSH connection');
    expect(barmanFailure(1, ['Another action is in progress for the backup 20261203T204646 of server main'], ctx).message).toContain('holds the lock');
    expect(barmanFailure(1, ['could not connect to server: Connection refused'], ctx).hint).toContain('pg_hba.conf');
    const plain = barmanFailure(1, errorLines('', 'something odd\n'), ctx);
    expect(plain.message).toBe('barman backup failed: something odd');
    expect(plain.hint).toBeUndefined();
  });
});

describe('Barman and PostgreSQL majors', () => {
  it('Barman 3.4 serves 11 to 15 and is refused for 16 and 17, saying which release would', () => {
    const v = parseBarmanVersion('3.4.0 Barman by EnterpriseDB (www.enterprisedb.com)\n');
    expect(v).toBe('3.4.0');
    for (const major of [11, 12, 13, 14, 15]) expect(barmanSupports(v!, major)).toEqual({ ok: true });
    expect(barmanSupports(v!, 16)).toEqual({ ok: false, reason: 'PostgreSQL 16 needs Barman 3.8 or later; the repository host has Barman 3.4.0' });
    expect(barmanSupports(v!, 17)).toMatchObject({ ok: false });
  });
});
