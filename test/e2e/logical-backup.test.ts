/**
 * Logical backups on the lab (PostgreSQL 15, pgBackRest 2.45), through the CLI: logical-backup.yml
 * (pg_dump per database, pg_dumpall -g, manifest, checksum, retention), the restore_dump action (into a
 * new database, row counts compared; globals) and pitr-drill.yml's logical check. One lab for the file,
 * ports 29700-29702.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, events, labUp, PLAYBOOKS, type JsonEvent, type TestLab } from './lab-helpers.js';

const DUMPS = (lab: TestLab) => join(lab.dir, 'bk1', 'repo', 'dumps');

/** schema.table=count of every user table of a database on db1, in order. */
async function counts(lab: TestLab, database: string): Promise<string> {
  return lab.psql(
    'db1',
    `SELECT string_agg(format('%s.%s=%s', n.nspname, c.relname, (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text), ',' ORDER BY n.nspname, c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`,
    database,
  );
}

async function dumpNames(lab: TestLab): Promise<string[]> {
  return (await readdir(DUMPS(lab))).sort();
}

/** The complete dumps of a database (or 'globals'), oldest first. */
async function complete(lab: TestLab, what: string): Promise<string[]> {
  const names = await dumpNames(lab);
  const ext = what === 'globals' ? 'sql' : '(dir|dump)';
  return names.filter((n) => new RegExp(`^lab-${what}-\\d{8}T\\d{6}\\.\\d{3}Z\\.${ext}$`).test(n) && names.includes(`${n}.sha256`));
}

function failure(evs: JsonEvent[]): string {
  return evs.filter((e) => e.type === 'step-result' && e.status === 'failed').map((e) => `${e.step}@${e.host}: ${e.msg ?? ''} ${JSON.stringify(e.error ?? '')}`).join('\n');
}

describe('logical backups on the lab', () => {
  let lab: TestLab;
  let playbooks: string;

  /** Runs a small playbook of this test with the lab's inventory. */
  async function play(name: string, body: string, args: string[] = []) {
    const file = join(playbooks, `${name}.yml`);
    await writeFile(file, `name: ${name}\nsteps:\n${body}`);
    const r = await lab.pgplay(['run', file, '--output', 'json', ...args]);
    return { ...r, events: events(r.stdout) };
  }

  beforeAll(async () => {
    lab = await createLab(29700, 'logical');
    playbooks = join(lab.dir, '..');
    await labUp(lab);
    // A second database with two schemas, a partitioned table and a sequence; a role with a password.
    await lab.psql('db1', 'CREATE DATABASE shop');
    await lab.psql(
      'db1',
      `CREATE SCHEMA sales;
       CREATE TABLE sales.orders (id serial PRIMARY KEY, note text);
       INSERT INTO sales.orders (note) SELECT 'order ' || g FROM generate_series(1, 5) g;
       CREATE TABLE items (id int, at date) PARTITION BY RANGE (at);
       CREATE TABLE items_2025 PARTITION OF items FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       CREATE TABLE items_2026 PARTITION OF items FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
       INSERT INTO items SELECT g, DATE '2025-12-30' + g FROM generate_series(1, 4) g;`,
      'shop',
    );
    await lab.psql('db1', "CREATE ROLE reader LOGIN PASSWORD 'dumped-secret'; CREATE ROLE gone LOGIN PASSWORD 'gone-secret'");
  });

  afterAll(async () => {
    await lab?.down();
  });

  it('dumps every database and the globals, and each restores into a new database with the rows of the source', async () => {
    const r = await lab.run('logical-backup.yml', ['-p', 'keep=2']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    expect(r.stdout).not.toContain('SCRAM-SHA-256$');
    for (const db of ['app', 'postgres', 'shop', 'globals']) expect(await complete(lab, db)).toHaveLength(1);
    const [shop] = await complete(lab, 'shop');
    // The manifest holds the source's counts; the checksum file covers every file of the dump and the manifest.
    const manifest = JSON.parse(await readFile(join(DUMPS(lab), `${shop}.json`), 'utf8')) as { tables: Record<string, number>; database: string };
    expect(manifest).toMatchObject({ database: 'shop', tables: { 'sales.orders': 5, 'public.items_2025': 1, 'public.items_2026': 3 } });
    const sums = await readFile(join(DUMPS(lab), `${shop}.sha256`), 'utf8');
    expect(sums).toContain(`  ${shop}/toc.dat`);
    expect(sums).toContain(`  ${shop}.json`);

    const restore = await play(
      'restore',
      `  - id: app
    hosts: db1
    restore_dump: { from: bk1, database: app, into: app_restored, jobs: 2 }
  - id: shop
    hosts: db1
    restore_dump: { from: bk1, database: shop, into: shop_restored }
`,
    );
    expect(restore.exitCode, failure(restore.events)).toBe(0);
    expect(await counts(lab, 'app_restored')).toBe(await counts(lab, 'app'));
    expect(await counts(lab, 'shop_restored')).toBe(await counts(lab, 'shop'));
    expect(await counts(lab, 'shop_restored')).toBe('public.items_2025=1,public.items_2026=3,sales.orders=5');
    // The sequence came back too: the next order gets the next id.
    expect(await lab.psql('db1', "INSERT INTO sales.orders (note) VALUES ('new') RETURNING id", 'shop_restored')).toBe('6');

    // Again: the targets now hold tables, and pgplay never restores over them (exit 3, under plan too).
    const before = await counts(lab, 'shop_restored');
    const plan = await lab.pgplay(['plan', join(playbooks, 'restore.yml'), '--output', 'json']);
    expect(plan.exitCode).toBe(3);
    const again = await play('restore', `  - id: shop\n    hosts: db1\n    restore_dump: { from: bk1, database: shop, into: shop_restored }\n`);
    expect(again.exitCode).toBe(3);
    expect(again.stdout).toContain('database shop_restored already exists on db1 and is not empty (');
    expect(await counts(lab, 'shop_restored')).toBe(before);
  });

  it('restores only the tables or schemas asked for', async () => {
    const r = await play(
      'restore-some',
      `  - id: schema
    hosts: db1
    restore_dump: { from: bk1, database: shop, into: shop_sales, schemas: [sales] }
  - id: table
    hosts: db1
    restore_dump: { from: bk1, database: shop, into: shop_part, tables: items_2026 }
`,
    );
    expect(r.exitCode, failure(r.events)).toBe(0);
    expect(await counts(lab, 'shop_sales')).toBe('sales.orders=5');
    expect(await counts(lab, 'shop_part')).toBe('public.items_2026=3');
  });

  it('restores the globals: missing roles come back, existing roles keep their password unless asked', async () => {
    const verifier = (role: string) => lab.psql('db1', `SELECT rolpassword FROM pg_authid WHERE rolname = '${role}'`);
    const dumped = await verifier('reader');
    const goneDumped = await verifier('gone');
    await lab.psql('db1', "ALTER ROLE reader PASSWORD 'changed-since'; DROP ROLE gone");
    const changed = await verifier('reader');
    expect(changed).not.toBe(dumped);

    const keep = await play('globals', `  - id: globals\n    hosts: db1\n    restore_dump: { from: bk1, globals: true }\n`);
    expect(keep.exitCode, failure(keep.events)).toBe(0);
    expect(keep.stdout).not.toContain('SCRAM-SHA-256$');
    expect(await verifier('gone')).toBe(goneDumped);
    expect(await verifier('reader')).toBe(changed);

    const asked = await play('globals-passwords', `  - id: globals\n    hosts: db1\n    restore_dump: { from: bk1, globals: true, passwords: true }\n`);
    expect(asked.exitCode, failure(asked.events)).toBe(0);
    expect(await verifier('reader')).toBe(dumped);
  });

  it('detects a changed byte through the checksum file and restores nothing from that dump', async () => {
    const [app] = await complete(lab, 'app');
    const toc = join(DUMPS(lab), app!, 'toc.dat');
    const original = await readFile(toc);
    const changed = Buffer.from(original);
    changed[changed.length - 1] ^= 0x01;
    await writeFile(toc, changed);
    try {
      const verify = await play('verify', `  - id: verify\n    hosts: bk1\n    dump: { command: verify }\n`);
      expect(verify.exitCode).toBe(1);
      expect(verify.stdout).toContain(`checksum mismatch in ${DUMPS(lab)} on bk1: ${app}: ${app}/toc.dat: FAILED`);
      const restore = await play('restore-bad', `  - id: app\n    hosts: db1\n    restore_dump: { from: bk1, database: app, into: app_bad }\n`);
      expect(restore.exitCode).toBe(1);
      expect(restore.stdout).toContain('nothing was restored');
      expect(await lab.psql('db1', "SELECT count(*) FROM pg_database WHERE datname = 'app_bad'")).toBe('0');
    } finally {
      await writeFile(toc, original);
    }
    const ok = await play('verify', `  - id: verify\n    hosts: bk1\n    dump: { command: verify }\n`);
    expect(ok.exitCode, failure(ok.events)).toBe(0);
  });

  it('keeps the newest dumps by count and age, never the newest complete one, and drops incomplete ones', async () => {
    const first = await complete(lab, 'shop');
    // A dump that stopped half-way, and the only (old) dump of a database that no longer exists.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(DUMPS(lab), 'lab-shop-20260101T000000.000Z.dir.partial'));
    await writeFile(join(DUMPS(lab), 'lab-ghost-20200101T000000.000Z.dump'), 'old');
    await writeFile(join(DUMPS(lab), 'lab-ghost-20200101T000000.000Z.dump.sha256'), '');
    // An old complete dump of shop: removed by age even though keep would allow it.
    await writeFile(join(DUMPS(lab), 'lab-shop-20200101T000000.000Z.dump'), 'old');
    await writeFile(join(DUMPS(lab), 'lab-shop-20200101T000000.000Z.dump.sha256'), '');

    for (let i = 0; i < 2; i++) {
      const r = await lab.run('logical-backup.yml', ['-p', 'keep=3', '-p', 'max_age=30d', '-p', 'databases=shop,app', '-p', 'format=custom']);
      expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    }
    const shop = await complete(lab, 'shop');
    expect(shop).toHaveLength(3);
    expect(shop[0]).toBe(first[0]);
    expect(shop.slice(1).every((n) => n.endsWith('.dump'))).toBe(true);
    let names = await dumpNames(lab);
    expect(names).not.toContain('lab-shop-20260101T000000.000Z.dir.partial');
    expect(names).not.toContain('lab-shop-20200101T000000.000Z.dump');
    expect(names).toContain('lab-ghost-20200101T000000.000Z.dump');

    // keep=2: the oldest of the three goes, with its manifest and checksum file; app, not dumped, keeps its three.
    const r = await lab.run('logical-backup.yml', ['-p', 'keep=2', '-p', 'databases=shop', '-p', 'globals=false']);
    expect(r.exitCode, r.stdout.slice(-3000)).toBe(0);
    names = await dumpNames(lab);
    expect(names.filter((n) => n.startsWith(first[0]!))).toEqual([]);
    expect(await complete(lab, 'shop')).toEqual([shop[2], expect.stringMatching(/^lab-shop-.*\.dir$/)]);
    expect(await complete(lab, 'app')).toHaveLength(3);
  });

  it('the drill restores the newest dumps into the copy; a table whose rows differ fails it by name', async () => {
    const backup = await lab.run('nightly-backup.yml');
    expect(backup.exitCode, backup.stdout.slice(-2000)).toBe(0);
    const pass = await lab.pgplay(['run', join(PLAYBOOKS, 'pitr-drill.yml'), '-p', 'logical_check=true', '-p', 'logical_databases=app,shop', '--yes']);
    expect(pass.exitCode, pass.stdout.slice(-3000)).toBe(0);
    expect(pass.stdout).toContain('DRILL PASSED');
    expect(pass.stdout).toMatch(/restored lab-app-\S+ into pgplay_check_app: 1 tables, \d+ rows; lab-shop-\S+ into pgplay_check_shop: 3 tables, 9 rows; every table has the rows the source had/);

    // A CHECK constraint that holds only under a database setting pg_dump does not carry: the rows
    // are in the source and in the dump, but they do not load.
    await lab.psql(
      'db1',
      `ALTER DATABASE shop SET app.allow_refunds = 'on';
       CREATE FUNCTION public.refunds_allowed() RETURNS boolean LANGUAGE sql AS $$ SELECT coalesce(current_setting('app.allow_refunds', true), '') = 'on' $$;
       CREATE TABLE public.refunds (id int CHECK (public.refunds_allowed()));`,
      'shop',
    );
    await lab.psql('db1', 'INSERT INTO public.refunds SELECT generate_series(1, 3)', 'shop');
    const dump = await lab.run('logical-backup.yml', ['-p', 'databases=shop', '-p', 'globals=false']);
    expect(dump.exitCode, dump.stdout.slice(-3000)).toBe(0);
    const fail = await lab.pgplay(['run', join(PLAYBOOKS, 'pitr-drill.yml'), '-p', 'logical_check=true', '-p', 'logical_databases=shop', '--yes']);
    expect(fail.exitCode).toBe(1);
    expect(fail.stdout).toContain('public.refunds: 0 rows in pgplay_check_shop on drill1, 3 in the source');
    expect(fail.stdout).toContain('DRILL FAILED');
    // The copy was torn down all the same.
    expect(await lab.postmasterPid('drill1')).toBeUndefined();
  });
});
