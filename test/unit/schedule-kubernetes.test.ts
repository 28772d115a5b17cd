import { execa } from 'execa';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { scheduleCommand } from '../../src/cli/commands/schedule.js';

/*
 * `pgplay schedule --kubernetes` prints a CronJob that the Kubernetes API schema accepts (kubernetes-models
 * validates with the schemas generated from Kubernetes' OpenAPI document), and the Dockerfile builds the
 * image it runs. Docker cannot build here (no engine): what can be checked without one is checked: the
 * packages it installs exist in the Debian release it is based on, and the runtime stage's layout, put
 * together from its COPY lines, runs the CLI through its ENTRYPOINT.
 */

const INVENTORY = resolve('test/fixtures/valid/inventory.yml');
const SECRET = 'k8s-s3cret-Value';

async function kubernetes(args: string[]): Promise<{ text: string; doc: Record<string, any> }> {
  let text = '';
  const code = await scheduleCommand(['-i', INVENTORY, '--kubernetes', ...args], (t) => void (text += t));
  expect(code).toBe(0);
  return { text, doc: parse(text) as Record<string, any> };
}

describe('pgplay schedule --kubernetes', () => {
  let dir: string;
  const savedSecret = process.env.PGPLAY_REPLICATION_PASSWORD;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgplay-k8s-'));
    process.env.PGPLAY_REPLICATION_PASSWORD = SECRET;
  });
  afterAll(async () => {
    if (savedSecret === undefined) delete process.env.PGPLAY_REPLICATION_PASSWORD;
    else process.env.PGPLAY_REPLICATION_PASSWORD = savedSecret;
    await rm(dir, { recursive: true, force: true });
  });

  it('prints a CronJob that validates against the Kubernetes API schema: Forbid, the image given, inventory and secrets by reference', async () => {
    const { text, doc } = await kubernetes(['nightly-backup', '--every', 'daily', '--at', '01:30', '-p', 'type=full', '--image', 'registry.example/pgplay:0.1.0', '--namespace', 'dba', '--state-claim', 'pgplay-state']);
    expect(() => new CronJob(doc as any).validate()).not.toThrow();
    expect(doc).toMatchObject({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'pgplay-main-nightly-backup', namespace: 'dba' } });
    expect(doc.spec).toMatchObject({ schedule: '30 1 * * *', concurrencyPolicy: 'Forbid', timeZone: 'Etc/UTC' });
    const pod = doc.spec.jobTemplate.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    expect(doc.spec.jobTemplate.spec.backoffLimit).toBe(0);
    const [container] = pod.containers;
    expect(container.image).toBe('registry.example/pgplay:0.1.0');
    // The image's entrypoint is the CLI (Dockerfile): the args are a pgplay command line.
    expect(container.args).toEqual(['run', 'nightly-backup', '-i', '/etc/pgplay/inventory/inventory.yml', '-p', 'type=full']);
    expect(container.env).toContainEqual({
      name: 'PGPLAY_REPLICATION_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'pgplay-main-nightly-backup-secrets', key: 'PGPLAY_REPLICATION_PASSWORD' } },
    });
    expect(container.env).toContainEqual({ name: 'CI', value: 'true' });
    expect(pod.volumes).toContainEqual({ name: 'inventory', configMap: { name: 'pgplay-main-nightly-backup-inventory' } });
    expect(pod.volumes).toContainEqual({ name: 'state', persistentVolumeClaim: { claimName: 'pgplay-state' } });
    expect(pod.volumes).toContainEqual({ name: 'secrets', secret: { secretName: 'pgplay-main-nightly-backup-secrets', defaultMode: 0o400 } });
    // The inventory's SSH key and known_hosts (~/.ssh/...) where the container's root finds them.
    expect(container.volumeMounts).toContainEqual({ name: 'secrets', mountPath: '/root/.ssh/id_ed25519', subPath: 'id_ed25519', readOnly: true });
    expect(container.volumeMounts).toContainEqual({ name: 'secrets', mountPath: '/root/.ssh/known_hosts', subPath: 'known_hosts', readOnly: true });
    // How to create what it references, without any value.
    expect(text).toContain(`#   kubectl -n dba create configmap pgplay-main-nightly-backup-inventory --from-file=inventory.yml=${INVENTORY}\n`);
    expect(text).toContain('--from-literal=PGPLAY_REPLICATION_PASSWORD="$PGPLAY_REPLICATION_PASSWORD" --from-file=id_ed25519="$HOME"/.ssh/id_ed25519');
    expect(text).not.toContain(SECRET);
  });

  it('the schema check is real: the same manifest with another concurrencyPolicy or an unnamed variable is refused', async () => {
    const { doc } = await kubernetes(['nightly-backup', '--every', 'hourly', '--at', '15', '--image', 'pgplay:0.1.0']);
    expect(doc.spec.schedule).toBe('15 * * * *');
    expect(() => new CronJob(doc as any).validate()).not.toThrow();
    const bad = structuredClone(doc);
    bad.spec.concurrencyPolicy = 'Never';
    expect(() => new CronJob(bad as any).validate()).toThrow(/concurrencyPolicy must be equal to one of the allowed values/);
    const unnamed = structuredClone(doc);
    unnamed.spec.jobTemplate.spec.template.spec.containers[0].env = [{ value: 'x' }];
    expect(() => new CronJob(unnamed as any).validate()).toThrow(/env\/0 must have required property name/);
  });

  it('a playbook that pgplay does not ship goes into the ConfigMap beside the inventory', async () => {
    const playbook = join(dir, 'my-check.yml');
    await writeFile(playbook, 'name: my-check\nsteps:\n  - id: ping\n    hosts: primary\n    assert: { that: "true" }\n');
    const { text, doc } = await kubernetes([playbook, '--every', 'weekly', '--day', 'Sat', '--at', '02:05', '--image', 'pgplay:0.1.0', '--time-zone', 'Europe/Berlin']);
    expect(() => new CronJob(doc as any).validate()).not.toThrow();
    expect(doc.spec).toMatchObject({ schedule: '5 2 * * 6', timeZone: 'Europe/Berlin' });
    expect(doc.spec.jobTemplate.spec.template.spec.containers[0].args.slice(0, 2)).toEqual(['run', '/etc/pgplay/inventory/my-check.yml']);
    expect(text).toContain(`--from-file=my-check.yml=${playbook}`);
    expect(doc.spec.jobTemplate.spec.template.spec.volumes).toContainEqual({ name: 'state', emptyDir: {} });
  });

  it('bad input is refused: no image, two engines, a systemd-only option', async () => {
    const run = (args: string[]) => scheduleCommand(['nightly-backup', '-i', INVENTORY, '--every', 'daily', ...args], () => undefined);
    await expect(run(['--kubernetes'])).rejects.toThrow(/--kubernetes needs --image/);
    await expect(run(['--kubernetes', '--image', 'x', '--cron'])).rejects.toThrow(/choose one/);
    await expect(run(['--kubernetes', '--image', 'x', '--randomized-delay', '5m'])).rejects.toThrow(/--randomized-delay is not for --kubernetes/);
    await expect(run(['--image', 'x'])).rejects.toThrow(/--image only with --kubernetes/);
  });
});

describe('Dockerfile', () => {
  const text = () => readFile('Dockerfile', 'utf8');
  const stages = async () => (await text()).split(/^FROM /m).slice(1).map((s) => `FROM ${s}`);

  it('is Debian bookworm with Node.js 20 (package.json engines) in both stages', async () => {
    const froms = (await text()).match(/^FROM \S+/gm);
    expect(froms).toEqual(['FROM node:20-bookworm-slim', 'FROM node:20-bookworm-slim']);
    const engines = JSON.parse(await readFile('package.json', 'utf8')).engines.node as string;
    expect(engines).toBe('>=20');
  });

  it('installs packages that exist in Debian bookworm (this machine is bookworm): the tested pgBackRest 2.45 and PostgreSQL 15 clients', async () => {
    expect(await readFile('/etc/os-release', 'utf8')).toMatch(/^VERSION_CODENAME=bookworm$/m);
    const runtime = (await stages())[1]!;
    const install = /apt-get install -y --no-install-recommends ([^\\&\n]+)/.exec(runtime)?.[1]?.trim().split(/\s+/) ?? [];
    expect(install).toEqual(['postgresql-client-15', 'pgbackrest', 'openssh-client', 'ca-certificates']);
    const r = await execa('apt-cache', ['show', '--no-all-versions', ...install], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const records = r.stdout.split(/\n\n+/).map((record) => ({
      pkg: /^Package: (\S+)$/m.exec(record)?.[1],
      version: /^Version: (\S+)$/m.exec(record)?.[1],
    }));
    for (const pkg of install) expect(records.map((x) => x.pkg), pkg).toContain(pkg);
    expect(records.find((x) => x.pkg === 'pgbackrest')?.version).toMatch(/^2\.45/);
  });

  it('the runtime stage, put together from its COPY lines, runs the CLI through its ENTRYPOINT and finds the shipped playbooks', async () => {
    const [build, runtime] = await stages();
    const ignored = (await readFile('.dockerignore', 'utf8')).split('\n').filter(Boolean);
    // What the build stage holds: what it copies from the context (never an ignored path), and what npm ci makes.
    const context = [...build!.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    for (const src of context) {
      expect(existsSync(src), src).toBe(true);
      expect(ignored, src).not.toContain(src);
    }
    expect(build).toMatch(/RUN npm ci .*&& npm prune --omit=dev/);
    const made = new Set([...context, 'node_modules', 'dist']);
    expect(existsSync('dist/bundle/main.js'), 'npm run build first').toBe(true);

    const root = await mkdtemp(join(tmpdir(), 'pgplay-image-'));
    try {
      const copies = [...runtime!.matchAll(/^COPY --from=build \/src\/(\S+) \.\/(\S+)$/gm)];
      expect(copies.map((m) => m[1])).toEqual(['package.json', 'node_modules', 'dist', 'schemas', 'templates', 'playbooks']);
      for (const [, src, dest] of copies) {
        expect(made.has(src!), `${src} is not in the build stage`).toBe(true);
        if (src === 'node_modules') await symlink(resolve('node_modules'), join(root, dest!));
        else await cp(src!, join(root, dest!), { recursive: true });
      }
      const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(runtime!)![1]!) as string[];
      expect(entrypoint).toEqual(['node', '/opt/pgplay/dist/bundle/main.js']);
      const [bin, ...args] = entrypoint.map((a) => a.replace('/opt/pgplay', root));
      const version = await execa(bin === 'node' ? process.execPath : bin!, [...args, '--version'], { reject: false });
      expect(version.stdout.trim()).toMatch(/0\.1\.0/);
      const listed = await execa(process.execPath, [...args, 'playbooks', '--output', 'json'], { reject: false, cwd: root });
      expect(listed.exitCode).toBe(0);
      const { playbooks } = JSON.parse(listed.stdout) as { playbooks: { name: string; file: string }[] };
      expect(playbooks.find((p) => p.name === 'nightly-backup')?.file).toBe(join(root, 'playbooks', 'nightly-backup.yml'));
      const names = playbooks.map((p) => p.name);
      expect(names).toEqual(expect.arrayContaining(['nightly-backup', 'standby-from-backup', 'pitr-drill']));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
