import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRunbook } from '../../src/docs/runbook.js';
import { DOCS_DIR, shippedRunbooks } from '../../src/docs/write-docs.js';
import { SHIPPED_PLAYBOOKS } from '../../src/core/paths.js';
import { fileTempDir } from '../support/temp-dirs.js';

const INVENTORY = resolve('test/fixtures/valid/inventory.yml');

describe('docs/: the shipped playbooks as runbooks', () => {
  it('are current (regenerate with npm run docs)', async () => {
    const expected = await shippedRunbooks();
    const onDisk = readdirSync(DOCS_DIR).filter((f) => f.endsWith('.md')).sort();
    expect(onDisk, 'docs/ holds one runbook per shipped playbook; regenerate with: npm run docs').toEqual([...expected.keys()].sort());
    for (const [name, text] of expected) expect(readFileSync(join(DOCS_DIR, name), 'utf8'), `docs/${name} is stale; regenerate with: npm run docs`).toBe(text);
  });
});

describe('pgplay docs', () => {
  it('names the hosts each step touches for an inventory, rendering patterns from params and vars', async () => {
    const md = await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'standby-from-backup.yml'), inventoryFile: INVENTORY, params: { host: 'db2' } });
    expect(md).toContain('- Params given: `host=db2`');
    expect(md).toMatch(/\*\*`target-is-standby`\*\*: The target is a standby .*\n   - hosts: `\{\{params.host\}\}` → db2\n/);
    const nightly = await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'nightly-backup.yml'), inventoryFile: INVENTORY });
    expect(nightly).toMatch(/\*\*`globals-dir`\*\*: Where the globals go, beside the repository\n   - hosts: `\{\{vars.backup_host\}\}` → bk1\n/);
    expect(nightly).toMatch(/\*\*`pgbackrest\/conf`\*\*.*\n   - hosts: `primary`, `standby`, `repository` → db1, db2, bk1\n/);
  });

  it("renders an included playbook's steps with the params the include step gives it (and its own defaults and vars), and shows those params", async () => {
    const md = await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'standby-from-backup.yml'), inventoryFile: INVENTORY, params: { host: 'db2' } });
    // include/standby-build.yml's steps run on {{params.host}}: its own param, given as {{params.host}} by the include step.
    expect(md).toMatch(/\*\*`build\/stop`\*\*.*\n   - hosts: `\{\{params.host\}\}` → db2\n/);
    expect(md).toMatch(/\*\*`build`\*\*: Build the standby\n   - hosts: `\{\{params.host\}\}` → db2\n   - includes: `include\/standby-build.yml` \(its steps follow as `build\/...`\)\n   - with params: .*`host=db2`/);
    // Without an inventory the params are shown as written.
    const bare = await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'standby-from-backup.yml') });
    expect(bare).toMatch(/\*\*`build`\*\*: Build the standby\n(.*\n){2}   - with params: .*`host=\{\{params.host\}\}`/);
  });

  it("never shows a secret param's value, also where an included playbook's params render it", async () => {
    const dir = fileTempDir('docs');
    writeFileSync(join(dir, 'inner.yml'), 'name: inner\nparams:\n  password: { type: string, default: "" }\nsteps:\n  - { id: use, assert: { that: "true" } }\n');
    writeFileSync(
      join(dir, 'outer.yml'),
      'name: outer\nparams:\n  password: { type: string, required: true, secret: true }\nsteps:\n  - { id: inc, hosts: db1, include: { playbook: inner.yml, params: { password: "{{params.password}}" } } }\n',
    );
    const md = await buildRunbook({ playbookFile: join(dir, 'outer.yml'), inventoryFile: INVENTORY, params: { password: 'Sup3r-Secret-Pw' } });
    expect(md).toContain('`password=********`');
    expect(md).not.toContain('Sup3r-Secret-Pw');
  });

  it('lists what the actions and steps declare destructive, with each step its guards and conditions', async () => {
    const md = await buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'pitr-drill.yml') });
    const section = md.slice(md.indexOf('## What is destructive'), md.indexOf('## Steps'));
    // file absent + force, and stopping a server with allow_primary, are what those actions declare.
    expect(section).toMatch(/file state: `absent`, path: `\{\{host.pgdata\}\}` is destructive/);
    expect(section).toMatch(/postgres state: `stopped` is destructive/);
    expect(section).toMatch(/pgbackrest command: `restore`.* is destructive/);
    // A read-only step is never listed.
    expect(section).not.toMatch(/pgbackrest command: `info`/);
    expect(md).toMatch(/guard: yes: a safety check that always runs/);
    expect(md).toMatch(/cleanup: yes: still runs after a failure or Ctrl-C/);
  });

  it('a playbook with nothing declared destructive says so', async () => {
    const md = await buildRunbook({ playbookFile: resolve('test/fixtures/valid/nightly-backup.yml') });
    expect(md).toContain('Nothing: no step of this playbook is declared destructive.');
  });

  it('refuses an unknown param like run does', async () => {
    await expect(buildRunbook({ playbookFile: join(SHIPPED_PLAYBOOKS, 'nightly-backup.yml'), params: { tpye: 'full' } })).rejects.toThrow(/unknown param "tpye"; did you mean "type"/);
  });
});
