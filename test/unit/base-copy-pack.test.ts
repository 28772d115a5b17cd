import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACK_SCRIPT } from '../../src/actions/base-copy.js';
import { LIST_SCRIPT, parseListing } from '../../src/postgres/base-repository.js';
import { DEFAULT_WAL_SEGMENT_SIZE } from '../../src/postgres/recovery-target.js';

/*
 * A backup taken with the copy method (base_copy, for a pg_basebackup older than the server) is packed
 * into pg_basebackup's layout, and the repository listing reads its wal_range.json as it reads a
 * backup_manifest: the set is usable for point-in-time recovery with its WAL range. Run by sh on real files.
 */
describe('base_copy: the packed backup in the repository', () => {
  let repo: string;
  beforeAll(async () => {
    repo = await mkdtemp(join(tmpdir(), 'pgplay-base-copy-'));
  });
  afterAll(async () => {
    await rm(repo, { recursive: true, force: true });
  });

  it('packs base.tar.gz (pg_wal empty) and pg_wal.tar.gz with names as pg_basebackup writes them; the listing reads its WAL range', async () => {
    const part = join(repo, 'base-20260102T030405Z.partial');
    const data = join(part, 'data');
    await mkdir(join(data, 'global'), { recursive: true });
    await mkdir(join(data, 'pg_wal', 'archive_status'), { recursive: true });
    await writeFile(join(data, 'PG_VERSION'), '17\n');
    await writeFile(join(data, 'global', 'pg_control'), 'control');
    await writeFile(join(data, 'backup_label'), 'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nSTART TIMELINE: 1\n');
    await writeFile(join(data, 'pg_wal', '000000010000000000000002'), 'wal');
    const final = join(repo, 'base-20260102T030405Z');
    const range = JSON.stringify({ Timeline: 1, 'Start-LSN': '0/2000028', 'End-LSN': '0/2000100' });
    const r = await execa('sh', ['-c', PACK_SCRIPT, 'pack', part, final, range], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(final);
    expect((await readdir(repo)).sort()).toEqual(['base-20260102T030405Z']);
    expect((await readdir(final)).sort()).toEqual(['SHA256SUMS', 'base.tar.gz', 'pg_wal.tar.gz', 'wal_range.json']);
    const base = (await execa('tar', ['-t', '-z', '-f', join(final, 'base.tar.gz')])).stdout.split('\n').sort();
    expect(base).toEqual(expect.arrayContaining(['PG_VERSION', 'backup_label', 'global/', 'global/pg_control', 'pg_wal/']));
    expect(base.filter((n) => n.startsWith('pg_wal/') && n !== 'pg_wal/')).toEqual([]);
    const wal = (await execa('tar', ['-t', '-z', '-f', join(final, 'pg_wal.tar.gz')])).stdout.split('\n').sort();
    expect(wal).toEqual(expect.arrayContaining(['000000010000000000000002', 'archive_status/']));
    expect((await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: final })).exitCode).toBe(0);
    // The label is read as the retention step reads it (a member named backup_label).
    expect((await execa('tar', ['-x', '-z', '-O', '-f', join(final, 'base.tar.gz'), 'backup_label'])).stdout).toContain('(file 000000010000000000000002)');

    const listed = parseListing((await execa('sh', ['-c', LIST_SCRIPT, 'list', repo])).stdout, DEFAULT_WAL_SEGMENT_SIZE);
    expect(listed.unusable).toEqual([]);
    expect(listed.backups).toHaveLength(1);
    expect(listed.backups[0]).toMatchObject({ label: 'base-20260102T030405Z', lsn_start: '0/2000028', lsn_stop: '0/2000100', wal_start: '000000010000000000000002' });
    expect(await readFile(join(final, 'wal_range.json'), 'utf8')).toBe(`${range}\n`);
  });
});
