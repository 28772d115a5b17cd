/**
 * debian_cluster over the real local transport, in a temporary "config directory": only missing files
 * are written (the user's are kept byte for byte), and a postgresql.conf naming another data directory
 * is refused rather than rewritten.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import debianClusterAction from '../../src/actions/debian-cluster.js';
import { PgplayError } from '../../src/core/errors.js';
import { localHost, tempDir, testContext } from './support/action-context.js';
import { debianPg15 } from '../support/hosts.js';

let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => cleanup?.());

async function setup() {
  const dir = await tempDir('debian-cluster');
  cleanup = dir.cleanup;
  const configDir = join(dir.path, 'etc', '15', 'main');
  const host = localHost({ pgdata: join(dir.path, 'data'), postgres: { ...debianPg15(), layout: 'debian', cluster: 'main', configDir } });
  return { configDir, host, ctx: testContext({ host }) };
}

describe('debian_cluster', () => {
  test('a host without the directory gets every file, postgresql.conf naming PGDATA and conf.d; a second run changes nothing', async () => {
    const { configDir, host, ctx } = await setup();
    expect((await debianClusterAction.check(ctx, {})).changed).toBe(true);
    const out = await debianClusterAction.apply(ctx, {}, { changed: true });
    expect(out.msg).toBe(`wrote postgresql.conf, pg_hba.conf, pg_ident.conf, start.conf, pg_ctl.conf, environment in ${configDir}`);
    const conf = await readFile(join(configDir, 'postgresql.conf'), 'utf8');
    expect(conf).toContain(`data_directory = '${host.pgdata}'`);
    expect(conf).toContain(`hba_file = '${configDir}/pg_hba.conf'`);
    expect(conf).toContain("include_dir = 'conf.d'");
    expect((await stat(join(configDir, 'pg_hba.conf'))).mode & 0o777).toBe(0o640);
    expect((await stat(join(configDir, 'conf.d'))).isDirectory()).toBe(true);
    expect(await readFile(join(configDir, 'start.conf'), 'utf8')).toMatch(/^auto$/m);
    expect((await debianClusterAction.check(ctx, {})).changed).toBe(false);
  });

  test("existing files are kept; only the missing ones are written", async () => {
    const { configDir, host, ctx } = await setup();
    await mkdir(configDir, { recursive: true });
    const mine = `data_directory = '${host.pgdata}'\nshared_buffers = '1GB'   # mine\n`;
    await writeFile(join(configDir, 'postgresql.conf'), mine);
    await writeFile(join(configDir, 'pg_hba.conf'), 'local all all trust # mine\n');
    const out = await debianClusterAction.apply(ctx, {}, { changed: true });
    expect(out.msg).toBe(`wrote pg_ident.conf, start.conf, pg_ctl.conf, environment in ${configDir}`);
    expect(await readFile(join(configDir, 'postgresql.conf'), 'utf8')).toBe(mine);
    expect(await readFile(join(configDir, 'pg_hba.conf'), 'utf8')).toBe('local all all trust # mine\n');
  });

  test('a postgresql.conf that runs another data directory is refused (exit 3), not rewritten', async () => {
    const { configDir, ctx } = await setup();
    await mkdir(configDir, { recursive: true });
    await writeFile(join(configDir, 'postgresql.conf'), "data_directory = '/srv/other'\n");
    const e = await debianClusterAction.check(ctx, {}).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PgplayError);
    expect((e as PgplayError).exitCode).toBe(3);
    expect((e as PgplayError).message).toMatch(/runs cluster 15\/main from \/srv\/other, but the inventory's pgdata is/);
    expect(await readFile(join(configDir, 'postgresql.conf'), 'utf8')).toBe("data_directory = '/srv/other'\n");
  });
});
