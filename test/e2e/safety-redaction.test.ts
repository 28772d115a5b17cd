import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

/**
 * A playbook that tries hard to leak: it echoes every secret in a command, registers the output,
 * templates it into a file shown as a diff, fails with the secrets on stderr, and passes a secret
 * param that fails validation. Every channel that leaves pgplay is then searched for every secret:
 * human output (plain and verbose), JSON events, stderr, the journal files and the --report files.
 */
const MASK = '********';

const SECRETS = {
  replication: 'repl-Secret-7Hq',
  postgres: 'pg-Secret-file-9Xz',
  cipher: 'cipher-Secret-3Lm',
  passphrase: 'ssh-Passphrase-5Rt',
  param: 'param-Secret-4Kd',
  // Never registered anywhere: masked only by their shape.
  conninfo: 'conninfo-pw-8Jv',
  uri: 'uri-pw-2Wc',
  pgpasswordEnv: 'envvar-pw-6Tn',
  pgpassLine: 'pgpass-pw-1Bq',
};

let dir: string;
let stateDir: string;
let playbook: string;
let inventory: string;
const env = {
  CI: 'true',
  PGPLAY_REPLICATION_PASSWORD: SECRETS.replication,
  PGPLAY_TEST_CIPHER: SECRETS.cipher,
};

/** Every byte pgplay let out in one invocation, channel by channel. */
const channels: Array<{ name: string; text: string }> = [];

async function pgplay(args: string[]) {
  const r = await runCli([...args, '--state-dir', stateDir], { env, cwd: dir });
  channels.push({ name: `stdout of ${args.join(' ')}`, text: r.stdout }, { name: `stderr of ${args.join(' ')}`, text: r.stderr });
  return r;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-redaction-'));
  stateDir = join(dir, 'state');
  await mkdir(join(dir, 'templates'));
  await mkdir(join(dir, 'out'));
  await writeFile(join(dir, 'pg-password'), SECRETS.postgres + '\n', { mode: 0o600 });
  await writeFile(join(dir, 'key-passphrase'), SECRETS.passphrase + '\n', { mode: 0o600 });
  await writeFile(join(dir, 'pgpass'), `db1:5432:*:replicator:${SECRETS.pgpassLine}\n`, { mode: 0o600 });
  inventory = join(dir, 'inventory.yml');
  await writeFile(
    inventory,
    [
      'cluster: leaky',
      'postgres:',
      '  version: 15',
      `  password: { file: ${join(dir, 'pg-password')} }`,
      'connection:',
      '  transport: local',
      `  passphrase: { file: ${join(dir, 'key-passphrase')} }`,
      'replication:',
      '  user: replicator',
      '  password: { env: PGPLAY_REPLICATION_PASSWORD }',
      'backup:',
      '  tool: pgbackrest',
      '  repoHost: db1',
      '  cipherPass: { env: PGPLAY_TEST_CIPHER }',
      'hosts:',
      `  db1: { address: 127.0.0.1, role: primary, pgdata: ${join(dir, 'pgdata')} }`,
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'templates', 'leak.conf.hbs'), '# rendered by pgplay\nechoed = {{echoed.stdout}}\ntoken = {{params.token}}\n');
  // Every secret, from the environment, from files and as a param, in one shell line per kind.
  const echoAll = [
    'echo "$PGPLAY_REPLICATION_PASSWORD $PGPLAY_TEST_CIPHER $(cat pg-password) $(cat key-passphrase) {{params.token}}"',
    `echo "host=db1 user=rep password=${SECRETS.conninfo} sslmode=require"`,
    `echo "postgresql://rep:${SECRETS.uri}@db1:5432/postgres PGPASSWORD=${SECRETS.pgpasswordEnv}"`,
    'cat pgpass',
  ].join('; ');
  playbook = join(dir, 'leaky.yml');
  await writeFile(
    playbook,
    [
      'name: leaky',
      'params:',
      '  token: { type: string, secret: true, pattern: "^[A-Za-z0-9-]+$" }',
      '  dest: { type: string }',
      'steps:',
      '  - id: echo-all',
      '    hosts: db1',
      `    command: { shell: ${JSON.stringify(echoAll)}, chdir: ${JSON.stringify(dir)} }`,
      '    register: echoed',
      '  - id: template-it',
      '    hosts: db1',
      '    template: { src: leak.conf.hbs, dest: "{{params.dest}}", mode: "0600" }',
      '  - id: say-it',
      '    hosts: db1',
      '    assert: { that: ["echoed.rc == 0"], msg: "saw {{echoed.stdout}}" }',
      '  - id: fail-with-it',
      '    hosts: db1',
      `    command: { shell: ${JSON.stringify(`(${echoAll}) >&2; exit 3`)}, chdir: ${JSON.stringify(dir)} }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('no secret leaves pgplay', () => {
  it('human output (plain, verbose, with diffs) and the --report file', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory, '-p', `token=${SECRETS.param}`, '-p', `dest=${join(dir, 'out', 'human.conf')}`, '--diff', '-v', '--report', join(dir, 'report-human.json')]);
    expect(r.exitCode).toBe(1);
    // The step failed naming step and host, with its stderr, masked.
    expect(r.stdout).toMatch(/step fail-with-it, host db1: \/bin\/sh exited with rc 3: \*{8} \*{8} \*{8} \*{8} \*{8}\n/);
    expect(r.stdout).toContain(`host=db1 user=rep password=${MASK} sslmode=require`);
    expect(r.stdout).toContain(`postgresql://rep:${MASK}@db1:5432/postgres PGPASSWORD=${MASK}`);
    expect(r.stdout).toContain(`db1:5432:*:replicator:${MASK}`);
    // The diff of the rendered file is shown, masked; the file itself holds the real values.
    expect(r.stdout).toContain(`+token = ${MASK}`);
    const written = await readFile(join(dir, 'out', 'human.conf'), 'utf8');
    expect(written).toContain(`token = ${SECRETS.param}`);
    expect(written).toContain(SECRETS.replication);
  });

  it('JSON events and their report', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory, '-p', `token=${SECRETS.param}`, '-p', `dest=${join(dir, 'out', 'json.conf')}`, '--diff', '--output', 'json', '--report', join(dir, 'report-json.json')]);
    expect(r.exitCode).toBe(1);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string; diff?: string; msg?: string });
    expect(events.find((e) => e.type === 'step-result' && e.step === 'template-it')!.diff).toContain(`+token = ${MASK}`);
    expect(events.find((e) => e.type === 'step-result' && e.step === 'fail-with-it')!.msg).toContain(`password=${MASK}`);
  });

  it('error messages printed by the CLI itself: a usage error quoting a secret, a secret param that fails validation', async () => {
    const quoted = await pgplay(['run', playbook, '-i', inventory, '-p', `token=${SECRETS.param}`, '-p', 'dest=/x', '--from', SECRETS.replication]);
    expect(quoted.exitCode).toBe(2);
    expect(quoted.stderr).toBe(`error: --from: no step with id "${MASK}" in ${playbook}`);
    const invalid = await pgplay(['run', playbook, '-i', inventory, '-p', `token=${SECRETS.param}!`, '-p', 'dest=/x']);
    expect(invalid.exitCode).toBe(2);
    expect(invalid.stderr).toMatch(/^error: param "token": /m);
  });

  it('a resumed run, whose journal holds the registered output', async () => {
    const r = await pgplay(['run', playbook, '-i', inventory, '--resume', '-p', `token=${SECRETS.param}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^pgplay: resuming run \S+: 3 step\/host pairs already done will be skipped$/m);
  });

  it('finds none of the secrets in any channel, and finds the mask in each', async () => {
    const runs = join(stateDir, 'runs');
    for (const name of await readdir(runs)) channels.push({ name: `journal ${name}`, text: await readFile(join(runs, name), 'utf8') });
    for (const name of ['report-human.json', 'report-json.json']) channels.push({ name, text: await readFile(join(dir, name), 'utf8') });
    const journals = channels.filter((c) => c.name.startsWith('journal '));
    expect(journals).toHaveLength(3);
    // The journal keeps the registered output (masked) for --resume.
    expect(journals.some((j) => j.text.includes('"type":"registered"') && j.text.includes(MASK))).toBe(true);

    const leaks: string[] = [];
    for (const channel of channels) {
      for (const [kind, secret] of Object.entries(SECRETS)) {
        if (channel.text.includes(secret)) leaks.push(`${kind} in ${channel.name}`);
      }
    }
    expect(leaks).toEqual([]);
    for (const name of ['report-human.json', 'report-json.json']) expect(channels.find((c) => c.name === name)!.text).toContain(MASK);
    for (const j of journals) expect(j.text).toContain(MASK);
    expect(channels.filter((c) => c.name.startsWith('stdout of run')).every((c) => c.text === '' || c.text.includes(MASK))).toBe(true);
  });
});
