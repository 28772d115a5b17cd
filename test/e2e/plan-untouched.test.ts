import { chmod, chown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { snapshotTree } from '../support/snapshot.js';
import { fileTempDir } from '../support/temp-dirs.js';


describe('pgplay plan', () => {
  it('reports what would change and leaves every file of a real tree untouched', async () => {
    const root = fileTempDir('plan');
    const tree = join(root, 'tree');
    await mkdir(join(tree, 'etc', 'old'), { recursive: true });
    await mkdir(join(tree, 'pgdata'), { recursive: true });
    await writeFile(join(tree, 'etc', 'app.conf'), 'listen = 1\n');
    await chmod(join(tree, 'etc', 'app.conf'), 0o644);
    await writeFile(join(tree, 'etc', 'old', 'stale.conf'), 'stale\n');
    await writeFile(join(tree, 'etc', 'secret.conf'), 'pw\n');
    await chown(join(tree, 'etc', 'secret.conf'), 0, 0);
    await symlink('app.conf', join(tree, 'etc', 'current'));
    await writeFile(join(root, 'app.conf.hbs'), 'listen = {{vars.listen}}\n');
    await writeFile(
      join(root, 'inventory.yml'),
      `cluster: plan\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${tree}/pgdata }\nvars: { listen: 2 }\n`,
    );
    await writeFile(
      join(root, 'playbook.yml'),
      [
        'name: plan-test',
        'steps:',
        '  - { id: tpl, hosts: all, template: { src: app.conf.hbs, dest: "' + tree + '/etc/app.conf", mode: "0600" } }',
        '  - { id: mode, hosts: all, file: { path: "' + tree + '/etc/secret.conf", state: file, mode: "0400" } }',
        '  - { id: dir, hosts: all, file: { path: "' + tree + '/etc/new", state: directory, mode: "0750" } }',
        '  - { id: gone, hosts: all, file: { path: "' + tree + '/etc/old", state: absent, force: true } }',
        '  - { id: link, hosts: all, file: { path: "' + tree + '/etc/current", state: link, src: secret.conf } }',
        '  - { id: wipe, hosts: all, command: { argv: [rm, -rf, "' + tree + '/etc"] } }',
        '  - { id: shell, hosts: all, command: { shell: "echo hacked > ' + tree + '/etc/app.conf" } }',
        '',
      ].join('\n'),
    );
    const before = await snapshotTree(tree);
    const plan = await runCli(['plan', join(root, 'playbook.yml'), '--output', 'json']);
    expect(plan.stderr).toBe('');
    expect(plan.exitCode).toBe(0);
    const statuses = plan.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'step-result')
      .map((e) => `${e.step}=${e.status}`);
    expect(statuses).toEqual(['tpl=changed', 'mode=changed', 'dir=changed', 'gone=changed', 'link=changed', 'wipe=changed', 'shell=changed']);
    const diff = plan.stdout.split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'step-result' && e.step === 'tpl').diff as string;
    expect(diff).toContain('-listen = 1');
    expect(diff).toContain('+listen = 2');
    expect(await snapshotTree(tree)).toEqual(before);
  });
});
