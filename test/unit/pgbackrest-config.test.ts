/**
 * Where pgbackrest.conf is (host.pgbackrest), what names it (archive_command, peers' host-config, the
 * action's --config), the inventory check of pgbackrest_config, and the cipher passphrase reaching
 * pgbackrest.conf through the template action's `secrets` without showing in a diff or a checksum.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { templateAction, type TemplateInput } from '../../src/actions/template.js';
import { resolveInput } from '../../src/actions/pgbackrest/input.js';
import { SHIPPED_TEMPLATES } from '../../src/core/paths.js';
import { PgplayErrors, type PgplayError } from '../../src/core/errors.js';
import { Redactor } from '../../src/core/redact.js';
import { hostScope } from '../../src/engine/scope.js';
import { createSecretResolver } from '../../src/engine/secrets.js';
import { resolveHosts } from '../../src/load/hosts.js';
import { inventoryErrors } from '../../src/load/inventory-errors.js';
import { parseYaml } from '../../src/load/yaml.js';
import type { Inventory } from '../../src/model/inventory.js';
import { resolvePgbackrest } from '../../src/postgres/pgbackrest-config.js';
import { createRenderer } from '../../src/render/index.js';
import { tempDir, testContext } from './support/action-context.js';

const renderer = createRenderer({ templateDirs: [SHIPPED_TEMPLATES] });

/** Two separate machines and a repository host, over SSH; db2 keeps its pgbackrest.conf elsewhere. */
const inv: Inventory = {
  cluster: 'main',
  postgres: { version: 15 },
  connection: { transport: 'ssh', user: 'root', become: 'postgres' },
  backup: { tool: 'pgbackrest', repoHost: 'bk1', cipherPass: { env: 'PGPLAY_TEST_CIPHER' } },
  hosts: {
    db1: { address: '10.0.0.11', role: 'primary', pgdata: '/var/lib/postgresql/15/main' },
    db2: { address: '10.0.0.12', role: 'standby', upstream: 'db1', pgdata: '/var/lib/postgresql/15/main', vars: { pgbackrest_config: '/srv/pgbr/db2.conf' } },
    bk1: { address: '10.0.0.20', role: 'repository' },
  },
};

function render(template: string, hostName: string, extra: Record<string, unknown> = {}, inventory: Inventory = inv): Promise<string> {
  const hosts = resolveHosts(inventory);
  return renderer.renderFile(template, hostScope({ params: {}, vars: inventory.vars ?? {}, inventory, hosts, facts: {}, registered: {} }, hostName, extra));
}

describe('host.pgbackrest: where pgbackrest.conf is', () => {
  it("pgBackRest's default unless the host var, else the inventory var, says otherwise", () => {
    expect(resolvePgbackrest({}, {})).toEqual({
      config: '/etc/pgbackrest/pgbackrest.conf',
      configIsDefault: true,
      configDir: '/etc/pgbackrest',
      command: 'pgbackrest',
    });
    expect(resolvePgbackrest({}, { vars: { pgbackrest_config: '/etc/pgbackrest/pgbackrest.conf' } }).configIsDefault).toBe(true);
    expect(resolvePgbackrest({ pgbackrest_config: '/h/pg.conf' }, { vars: { pgbackrest_config: '/i/pg.conf' } })).toEqual({
      config: '/h/pg.conf',
      configIsDefault: false,
      configDir: '/h',
      command: 'pgbackrest --config=/h/pg.conf',
    });
    expect(resolvePgbackrest({}, { vars: { pgbackrest_config: '/i/pg.conf' } }).command).toBe('pgbackrest --config=/i/pg.conf');
    const hosts = resolveHosts(inv);
    expect(hosts.db1!.pgbackrest!.config).toBe('/etc/pgbackrest/pgbackrest.conf');
    expect(hosts.db2!.pgbackrest!.config).toBe('/srv/pgbr/db2.conf');
  });

  it('the pgbackrest action passes --config only off the default (pgBackRest keeps its own fallback there)', () => {
    const hosts = resolveHosts(inv);
    expect(resolveInput({ command: 'info' }, hosts.db1!, inv)).toEqual({ stanza: 'main' });
    expect(resolveInput({ command: 'info' }, hosts.db2!, inv)).toEqual({ stanza: 'main', config: '/srv/pgbr/db2.conf' });
  });

  it('archive_command names --config only when the config is not at the default path', async () => {
    const line = (text: string) => text.split('\n').find((l) => l.startsWith('archive_command'));
    expect(line(await render('postgresql.conf.hbs', 'db1'))).toBe("archive_command = 'pgbackrest --stanza=main archive-push %p'");
    expect(line(await render('postgresql.conf.hbs', 'db2'))).toBe("archive_command = 'pgbackrest --config=/srv/pgbr/db2.conf --stanza=main archive-push %p'");
  });

  it("the repository host starts a peer's remote side with that peer's config", async () => {
    const repo = await render('pgbackrest.conf.hbs', 'bk1');
    expect(repo).toContain('pg1-host=10.0.0.11\npg1-host-user=postgres\n');
    expect(repo).not.toContain('pg1-host-config');
    expect(repo).toContain('pg3-host=10.0.0.12\npg3-host-user=postgres\npg3-host-config=/srv/pgbr/db2.conf\n');
  });

  it('after a promotion (pg1_host) the repository lists the new primary as pg1 and leaves the fenced old one out', async () => {
    const hosts = resolveHosts(inv);
    // include/backup/pgbackrest/conf.yml passes its pg1_host param to the template as a template var.
    const scope = hostScope({ params: {}, vars: {}, inventory: inv, hosts, facts: {}, registered: {} }, 'bk1', { pg1_host: 'db2' });
    const repo = await renderer.renderFile('pgbackrest.conf.hbs', scope);
    expect(repo).toContain('# db2 (standby)\npg1-path=/var/lib/postgresql/15/main\n');
    expect(repo).toContain('pg1-host=10.0.0.12\npg1-host-user=postgres\npg1-host-config=/srv/pgbr/db2.conf\n');
    // pgBackRest on the repository fails while it lists a pg host whose pgBackRest is stopped (fenced) or that is gone.
    expect(repo).not.toContain('10.0.0.11');
    expect(repo).not.toMatch(/^pg[2-9]-/m);
  });

  it('a pgbackrest_config that is not an absolute plain path is an inventory error with its position (exit 2)', () => {
    const text = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'valid', 'inventory.yml'), 'utf8');
    const bad = text
      .replace('  bk1: { address: 10.0.0.20, role: repository }', "  bk1: { address: 10.0.0.20, role: repository, vars: { pgbackrest_config: \"/etc/pg br'.conf\" } }")
      .replace('vars: {}', 'vars: { pgbackrest_config: etc/pgbackrest.conf }');
    expect(bad).not.toBe(text);
    let errors: PgplayError[] = [];
    try {
      errors = inventoryErrors(parseYaml(bad, 'inventory.yml'));
    } catch (e) {
      if (!(e instanceof PgplayErrors)) throw e;
      errors = e.errors;
    }
    const shown = errors.map((e) => e.format().replace(e.position!.file, basename(e.position!.file)));
    expect(shown).toEqual([
      expect.stringMatching(/^inventory\.yml:33:\d+: vars\.pgbackrest_config of "bk1" "\/etc\/pg br'\.conf" is not an absolute path of plain characters/),
      expect.stringMatching(/^inventory\.yml:35:\d+: vars\.pgbackrest_config "etc\/pgbackrest\.conf" is not an absolute path of plain characters/),
    ]);
    expect(errors.every((e) => e.exitCode === 2)).toBe(true);
  });
});

describe('the cipher passphrase in pgbackrest.conf (template secrets)', () => {
  const PASS = 'correct-horse-battery-staple-42';
  let dir: { path: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    dir = await tempDir('pgbackrest-secrets');
    await mkdir(join(dir.path, 'templates'));
    await writeFile(join(dir.path, 'templates', 'pgbackrest.conf.hbs'), readFileSync(join(SHIPPED_TEMPLATES, 'pgbackrest.conf.hbs')));
  });
  afterAll(() => dir.cleanup());

  it('reaches the repository host and the database hosts, next to repo1-cipher-type', async () => {
    const secrets = { backup: { cipherPass: PASS } };
    for (const name of ['bk1', 'db1', 'db2']) {
      const text = await render('pgbackrest.conf.hbs', name, { secrets });
      expect(text, name).toContain(`repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=${PASS}\n`);
    }
    // Without the secret (and without cipherPass) no passphrase line.
    expect(await render('pgbackrest.conf.hbs', 'db1')).not.toContain('repo1-cipher-pass');
    const plain = { ...inv, backup: { tool: 'pgbackrest' as const, repoHost: 'bk1' } };
    expect(await render('pgbackrest.conf.hbs', 'bk1', { secrets: {} }, plain)).not.toContain('cipher');
  });

  it('the template action writes it (0640) but its diff, once redacted, and its result never hold it', async () => {
    const redactor = new Redactor();
    const hosts = resolveHosts(inv);
    const base = testContext({ become: 'root', diff: true, templatesDir: join(dir.path, 'templates') });
    const scope = hostScope({ params: {}, vars: {}, inventory: inv, hosts, facts: {}, registered: {} }, 'db1');
    const ctx = {
      ...base,
      inventory: inv,
      redactor,
      secret: createSecretResolver(redactor, { PGPLAY_TEST_CIPHER: PASS }),
      renderTemplate: (src: string, extra: Record<string, unknown> = {}) => renderer.renderFile(join(dir.path, 'templates', src), { ...scope, ...extra }),
    };
    const dest = join(dir.path, 'pgbackrest.conf');
    const input: TemplateInput = { src: 'pgbackrest.conf.hbs', dest, mode: '0640', secrets: ['backup.cipherPass'] };
    const planned = await templateAction.check(ctx, input);
    const outcome = await templateAction.apply(ctx, input, planned);
    expect(outcome.changed).toBe(true);
    expect(await readFile(dest, 'utf8')).toContain(`repo1-cipher-pass=${PASS}\n`);
    expect((await stat(dest)).mode & 0o777).toBe(0o640);
    expect(outcome.diff).toContain(`+repo1-cipher-pass=${PASS}`);
    expect(redactor.redact(outcome.diff!)).toContain('+repo1-cipher-pass=********');
    expect(redactor.redact(outcome.diff!)).not.toContain(PASS);
    // No checksum of a file holding a secret: it would let a reader of the journal test guesses.
    expect(outcome.data).toEqual({ dest });
    const again = await templateAction.check(ctx, input);
    expect(again.changed).toBe(false);
  });

  it('a passphrase with a line break is refused: it would add settings to the file', async () => {
    const redactor = new Redactor();
    const base = testContext({ become: 'root', templatesDir: join(dir.path, 'templates') });
    const ctx = { ...base, inventory: inv, redactor, secret: createSecretResolver(redactor, { PGPLAY_TEST_CIPHER: 'a\nrepo1-path=/tmp' }) };
    const input: TemplateInput = { src: 'pgbackrest.conf.hbs', dest: join(dir.path, 'never.conf'), secrets: ['backup.cipherPass'] };
    await expect(templateAction.check(ctx, input)).rejects.toThrow('the secret backup.cipherPass must be a single line');
  });
});
