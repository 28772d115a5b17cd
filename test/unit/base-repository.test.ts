/**
 * The basebackup engine's repository (src/postgres/base-repository.ts) read by the real LIST_SCRIPT
 * from a directory laid out as nightly-backup.yml writes it, and the archive command
 * (templates/pgplay-wal.sh) run for real: no overwrite with other content, the same content is success.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseBackupSet, checkWal } from '../../src/postgres/backup-set.js';
import { LIST_SCRIPT, parseListing } from '../../src/postgres/base-repository.js';
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn } from '../../src/postgres/recovery-target.js';

const SCRIPT = resolve('templates/pgplay-wal.sh');

function manifest(timeline: number, start: string, end: string): string {
  // The shape pg_basebackup 15 writes (the part pgplay reads).
  return `{ "PostgreSQL-Backup-Manifest-Version": 1,\n"Files": [\n],\n"WAL-Ranges": [\n{ "Timeline": ${timeline}, "Start-LSN": "${start}", "End-LSN": "${end}" }\n],\n"Manifest-Checksum": "x"}\n`;
}

describe('the basebackup repository', () => {
  let root: string;
  let repo: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pgplay-base-repo-'));
    repo = join(root, 'repo');
    for (const [label, start, end, mtime] of [
      ['base-20260101T010000Z', '0/2000028', '0/2000100', Date.UTC(2026, 0, 1, 1, 0, 5)],
      ['base-20260102T010000Z', '0/7000028', '0/8000100', Date.UTC(2026, 0, 2, 1, 0, 9)],
    ] as const) {
      await mkdir(join(repo, label), { recursive: true });
      await writeFile(join(repo, label, 'backup_manifest'), manifest(1, start, end));
      await utimes(join(repo, label, 'backup_manifest'), mtime / 1000, mtime / 1000);
    }
    await mkdir(join(repo, 'base-20260103T010000Z.partial'));
    await mkdir(join(repo, 'base-20250101T010000Z'));
    await mkdir(join(repo, 'wal'));
    for (const f of ['000000010000000000000002', '000000010000000000000003', '000000010000000000000004', '00000002.history', '.000000010000000000000005.pgplay-wal.1']) {
      await writeFile(join(repo, 'wal', f), f);
    }
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const list = async (path: string) => parseListing((await execa('/bin/sh', ['-c', LIST_SCRIPT, 'list', path])).stdout, DEFAULT_WAL_SEGMENT_SIZE);

  it('lists complete backups with their WAL range from the manifest, and the archived segments', async () => {
    const r = await list(repo);
    expect(r.exists).toBe(true);
    expect(r.backups.map((b) => [b.label, b.lsn_start, b.lsn_stop, b.wal_start, b.wal_stop, b.start_time, b.stop_time])).toEqual([
      ['base-20260101T010000Z', '0/2000028', '0/2000100', '000000010000000000000002', '000000010000000000000002', '2026-01-01T01:00:00.000Z', '2026-01-01T01:00:05.000Z'],
      ['base-20260102T010000Z', '0/7000028', '0/8000100', '000000010000000000000007', '000000010000000000000008', '2026-01-02T01:00:00.000Z', '2026-01-02T01:00:09.000Z'],
    ]);
    // No manifest (PostgreSQL 12 or older): listed as unusable for a point-in-time choice; a .partial backup is none.
    expect(r.unusable).toEqual(['base-20250101T010000Z']);
    expect(r.segments.map((s) => s.name)).toEqual(['000000010000000000000002', '000000010000000000000003', '000000010000000000000004']);
    expect(r.files).toContain('00000002.history');
    expect(r.files.some((f) => f.startsWith('.'))).toBe(false);
    expect((await list(join(root, 'missing'))).exists).toBe(false);
  });

  it('serves the set choice and the WAL check: a target between the backups is reached from the first, over its archived WAL', async () => {
    const r = await list(repo);
    const choice = chooseBackupSet(r.backups, { type: 'lsn', value: '0/4000000', position: { lsn: parseLsn('0/4000000')!, source: 'test' } });
    expect(choice.backup.label).toBe('base-20260101T010000Z');
    const wal = checkWal(r.segments, { backup: choice.backup, type: 'lsn', position: { lsn: parseLsn('0/4000000')!, source: 'test' }, maxTimeline: Infinity, segmentSize: DEFAULT_WAL_SEGMENT_SIZE });
    expect(wal).toMatchObject({ from: '000000010000000000000002', to: '000000010000000000000004', missing: [] });
  });
});

describe('pgplay-wal, the archive and restore command', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pgplay-wal-'));
    await mkdir(join(root, 'wal'));
    await writeFile(join(root, 'seg'), 'first content');
    await writeFile(join(root, 'other'), 'other content');
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  const wal = (...args: string[]) => execa(SCRIPT, args, { reject: false });
  const name = '000000010000000000000009';

  it('archives a segment, accepts the same content again, refuses other content and keeps the original', async () => {
    expect((await wal('push', join(root, 'wal'), join(root, 'seg'), name)).exitCode).toBe(0);
    expect(await readFile(join(root, 'wal', name), 'utf8')).toBe('first content');
    expect((await wal('push', join(root, 'wal'), join(root, 'seg'), name)).exitCode).toBe(0);
    const refused = await wal('push', join(root, 'wal'), join(root, 'other'), name);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('refusing to overwrite');
    expect(await readFile(join(root, 'wal', name), 'utf8')).toBe('first content');
    expect(await readdir(join(root, 'wal'))).toEqual([name]);
  });

  it('fetches an archived segment; a missing one is exit 1; a name with a slash is refused', async () => {
    expect((await wal('fetch', join(root, 'wal'), name, join(root, 'got'))).exitCode).toBe(0);
    expect(await readFile(join(root, 'got'), 'utf8')).toBe('first content');
    expect((await wal('fetch', join(root, 'wal'), '00000001000000000000000A', join(root, 'none'))).exitCode).toBe(1);
    expect((await wal('push', join(root, 'wal'), join(root, 'seg'), '../escape')).exitCode).toBe(2);
  });
});
