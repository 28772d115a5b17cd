/**
 * Every backup engine hands the set choice, the WAL check, status and reports the same BackupEntry
 * (pgbackrest-info.ts's type). A full backup of Barman, of the basebackup repository (as procedures
 * list it, and as status lists it) and of pgBackRest must read alike: the same keys, and the times in
 * one ISO 8601 format, pgBackRest's (`2026-12-03T20:59:52.000Z`), whatever engine wrote them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupEntry } from '../../src/barman/archive.js';
import { parseJsonOutput, parseShowBackup } from '../../src/barman/output.js';
import { parseListing } from '../../src/postgres/base-repository.js';
import { parseInfoJson, type BackupEntry } from '../../src/postgres/pgbackrest-info.js';
import { DEFAULT_WAL_SEGMENT_SIZE } from '../../src/postgres/recovery-target.js';
import { parseBasebackupListing } from '../../src/status/checks/basebackups.js';

const fixture = (...path: string[]) => readFileSync(join(__dirname, 'fixtures', ...path), 'utf8');

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/;

function expectPinnedFormat(e: BackupEntry, start: string, stop: string): void {
  expect([e.start_time, e.stop_time]).toEqual([start, stop]);
  expect(e.start_time).toMatch(ISO_MS);
  expect(new Date(e.start_time).getTime()).toBe(e.start * 1000);
  expect(new Date(e.stop_time).getTime()).toBe(e.stop * 1000);
}

describe('a full backup reads the same from every engine', () => {
  const pgbackrest = parseInfoJson(readFileSync(join(__dirname, '..', 'fixtures', 'pgbackrest', 'info3.json'), 'utf8'))[0]!.backups[0]!;
  const barman = backupEntry(parseShowBackup(parseJsonOutput(fixture('barman', 'show-backup.json')), 'main'));
  const base = parseListing(
    'backup base-20260101T010000Z 1767229205 {"Timeline":1,"Start-LSN":"0/2000028","End-LSN":"0/2000100"}\n',
    DEFAULT_WAL_SEGMENT_SIZE,
  ).backups[0]!;
  const statusBase = parseBasebackupListing('1048576\tbase-20260101T010000Z\n')[0]!;

  it('times in pgBackRest\'s ISO format (milliseconds, Z) from every engine', () => {
    expectPinnedFormat(pgbackrest, '2026-11-21T13:39:00.000Z', pgbackrest.stop_time);
    expectPinnedFormat(barman, '2026-12-03T20:59:52.000Z', '2026-12-03T20:59:54.000Z');
    expectPinnedFormat(base, '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:05.000Z');
    expectPinnedFormat(statusBase, '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:00.000Z');
  });

  it('the same keys, a full backup with no prior and no references', () => {
    const keys = Object.keys(pgbackrest).sort();
    for (const e of [barman, base, statusBase]) {
      expect(Object.keys(e).sort()).toEqual(keys);
      expect(e).toMatchObject({ type: 'full', prior: null, reference: [], error: false });
    }
    expect(barman).toMatchObject({ label: '20261203T205952', size: 23138558, repo_size: 23138558, lsn_start: '0/7000028', lsn_stop: '0/8000000', wal_start: '000000010000000000000007' });
    expect(statusBase).toMatchObject({ size: 1048576, repo_size: 1048576 });
  });
});
