/**
 * Start-up cost: the built CLI loads a heavy package (execa, pg, listr2, ssh2: 30-120 ms each) only
 * when the command in hand needs it. Each run goes under `node --import` with a hook that records
 * every module the process loads, in order (ESM through a module.register resolve hook, CommonJS as
 * require() compiles each file), so the assertions are about what the process really loaded.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliLimits, finished } from '../support/cli.js';
import { startSshd, type Sshd } from '../support/sshd.js';
import { CLI, jsonEvents, resultsByHost, writeInventory } from './fixtures/ssh/support.js';

const HEAVY = ['execa', 'ssh2', 'pg', 'listr2'];
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

// Runs in node's hooks thread: every URL the ESM loader resolves, appended as it is resolved, to the log and
// to its own list (<log>.esm).
const HOOKS = `
import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  appendFileSync(log + '.esm', result.url + '\\n');
  return result;
}
`;

// Preloaded with --import: registers the hooks; CommonJS modules required from CommonJS never reach
// them, so each file require() compiles is appended as well, as it is compiled.
const RECORD = `
import { appendFileSync } from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';
const log = process.env.PGPLAY_IMPORT_LOG;
register('./hooks.mjs', import.meta.url, { data: { log } });
// '.js' compiles '.cjs' files too (node 20 registers no handler of their own); '.node' loads native addons.
for (const ext of ['.js', '.json', '.node']) {
  const compile = Module._extensions[ext];
  Module._extensions[ext] = function (module, filename) {
    appendFileSync(log, pathToFileURL(filename).href + '\\n');
    return compile.call(this, module, filename);
  };
}
// Every child process (spawn, execFile, exec all go through ChildProcess.prototype.spawn), as the command it started.
import { ChildProcess } from 'node:child_process';
const spawn = ChildProcess.prototype.spawn;
ChildProcess.prototype.spawn = function (options) {
  appendFileSync(log, 'process:' + options.args.map((a) => a.split('\\n')[0].slice(0, 40)).join(' ') + '\\n');
  return spawn.call(this, options);
};
// node's own bundled packages (undici: fetch, Response) load on a global's first use, seen by neither.
process.on('exit', () => appendFileSync(log, process.moduleLoadList.filter((m) => m.includes('/deps/')).map((m) => 'node-deps:' + m.split(' ').pop() + '\\n').join('')));
`;

const PLAYBOOK = `name: startup
steps:
  - id: dir
    name: a directory
    hosts: all
    file: { path: "{{host.vars.root}}", state: directory, mode: "0750" }
  - id: mark
    name: a rendered file
    hosts: all
    template: { src: mark.txt.hbs, dest: "{{host.vars.root}}/mark.txt", mode: "0640" }
`;

// The run of bench/first-command.sh: one command on one host.
const COMMAND_PLAYBOOK = `name: startup-command
steps:
  - id: one
    name: one command
    hosts: all
    command: { argv: ["true"] }
`;

// No PostgreSQL listens, so the probe fails and the step times out: what matters is that it tried to connect.
const SQL_PLAYBOOK = `name: startup-sql
steps:
  - id: ready
    name: a query that needs a connection
    hosts: all
    wait: { sql: "select true", timeout: 1s, interval: 200ms }
`;

let sshd: Sshd;
let dir: string;
let record: string;
let sshInventory: string;
let localInventory: string;
let playbook: string;
let sqlPlaybook: string;
let commandPlaybook: string;
let runs = 0;

interface Traced {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The URLs the process resolved or required: the bundle's files, packages left out of it, generated validators. */
  files: Set<string>;
  /** Package names loaded from node_modules, from their own files or from the bundle's (the innermost node_modules of each path). */
  packages: Set<string>;
  /** pgplay's own modules loaded, relative to dist/ (e.g. actions/file.js), from the bundle's files. */
  modules: Set<string>;
  /** The child processes the run started, in order, each as its argv (each word's first line, cut at 40 characters). */
  processes: string[];
  /** What the run resolved and started, in order: module URLs (the bundle's files unbundled) and `process:` lines. */
  sequence: string[];
  /** The URLs node's ESM loader resolved (the others were require()d). */
  esm: string[];
}

/** esbuild's metafile of the bundle the bin runs (src/app/bundle-cli.ts): the modules in each of its files. */
const BUNDLE = JSON.parse(readFileSync('dist/bundle-meta.json', 'utf8')) as { outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> };

/**
 * The resolved URLs with each file of the bundle replaced by the modules esbuild put into it, so the
 * assertions below read the same whether a module came from its own file or from a chunk.
 */
function unbundled(log: string): string {
  const root = pathToFileURL(process.cwd()).href + '/';
  return log
    .split('\n')
    .flatMap((url) => {
      const output = url.startsWith(root) ? BUNDLE.outputs[url.slice(root.length)] : undefined;
      return output ? Object.keys(output.inputs).map((input) => pathToFileURL(resolve(input)).href) : [url];
    })
    .join('\n');
}

function ownModulesIn(log: string): Set<string> {
  const dist = pathToFileURL(join(process.cwd(), 'dist')).href + '/';
  return new Set(log.split('\n').flatMap((url) => (url.startsWith(dist) ? [url.slice(dist.length)] : [])));
}

function packagesIn(log: string): Set<string> {
  const out = new Set<string>();
  for (const m of log.matchAll(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:(?!node_modules\/)[^\n])*$/gm)) out.add(m[1]!);
  return out;
}

/** The CLI as a script runs it (output to a pipe, CI=true), or at a terminal; runs keep their own state dir. */
async function traced(args: string[], options: { terminal?: boolean; stateDir?: string } = {}): Promise<Traced> {
  const log = join(dir, `imports-${++runs}.log`);
  await writeFile(log, '');
  const argv = ['--import', record, CLI, ...args, ...(args[0] === 'run' ? ['--state-dir', options.stateDir ?? join(dir, 'state')] : [])];
  const env: Record<string, string | undefined> = { PGPLAY_IMPORT_LOG: log, CI: options.terminal ? undefined : 'true' };
  // script(1) gives the CLI a pseudo-terminal for stdout, as a person at a terminal has.
  const r = finished(
    options.terminal
      ? await execa('script', ['-qec', ['node', ...argv].map(shellQuote).join(' '), '/dev/null'], { reject: false, env, extendEnv: true, ...cliLimits() })
      : await execa('node', argv, { reject: false, env, ...cliLimits() }),
  );
  const opened = await readFile(log, 'utf8');
  const resolved = unbundled(opened);
  const processes = opened.split('\n').flatMap((line) => (line.startsWith('process:') ? [line.slice('process:'.length)] : []));
  const esm = (await readFile(`${log}.esm`, 'utf8').catch(() => '')).split('\n').filter(Boolean);
  return { ...r, esm, files: new Set(opened.split('\n').filter(Boolean)), packages: packagesIn(resolved), modules: ownModulesIn(resolved), processes, sequence: resolved.split('\n').filter(Boolean) };
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function heavy(t: Traced): string[] {
  return HEAVY.filter((p) => t.packages.has(p));
}

beforeAll(async () => {
  sshd = await startSshd({ addresses: ['127.0.0.2'] });
  dir = await mkdtemp(join(tmpdir(), 'pgplay-startup-'));
  await writeFile(join(dir, 'hooks.mjs'), HOOKS);
  record = join(dir, 'record.mjs');
  await writeFile(record, RECORD);
  await mkdir(join(dir, 'templates'));
  await writeFile(join(dir, 'templates', 'mark.txt.hbs'), '{{host.name}} was here\n');
  playbook = join(dir, 'playbook.yml');
  await writeFile(playbook, PLAYBOOK);
  sqlPlaybook = join(dir, 'sql.yml');
  await writeFile(sqlPlaybook, SQL_PLAYBOOK);
  commandPlaybook = join(dir, 'command.yml');
  await writeFile(commandPlaybook, COMMAND_PLAYBOOK);
  sshInventory = await writeInventory(join(dir, 'inventory-ssh.yml'), {
    cluster: 'startup-ssh',
    sshd,
    hosts: { n1: { address: '127.0.0.2', extra: `role: primary, pgdata: ${join(dir, 'no-pgdata')}, vars: { root: ${join(dir, 'ssh-root')} }` } },
  });
  localInventory = join(dir, 'inventory-local.yml');
  await writeFile(
    localInventory,
    [
      'cluster: startup-local',
      'postgres: { version: 15 }',
      'connection: { transport: local }',
      'hosts:',
      `  here: { address: 127.0.0.1, role: primary, pgdata: ${join(dir, 'no-pgdata')}, vars: { root: ${join(dir, 'local-root')} } }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  await sshd?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('commands that touch no host load none of execa, ssh2, pg, listr2', () => {
  it('--version', async () => {
    const r = await traced(['--version']);
    expect(r.stdout).toBe(`pgplay ${VERSION}`);
    expect(r.exitCode).toBe(0);
    expect(heavy(r)).toEqual([]);
  });

  it('--help', async () => {
    const r = await traced(['--help']);
    expect(r.stdout).toContain('Usage:\n  pgplay run <playbook.yml> [options]');
    expect(r.exitCode).toBe(0);
    expect(heavy(r)).toEqual([]);
  });

  it('validate', async () => {
    const r = await traced(['validate', playbook, '-i', sshInventory]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`ok  ${sshInventory} (inventory)\nok  ${playbook} (playbook)`);
    expect(r.exitCode).toBe(0);
    expect(heavy(r)).toEqual([]);
  });
});

describe('a run loads what its hosts and output need', () => {
  it('over SSH with plain output: ssh2 only, no execa, pg or listr2', async () => {
    const r = await traced(['run', playbook, '-i', sshInventory, '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(resultsByHost(jsonEvents(r.stdout))).toEqual({ n1: ['dir=changed', 'mark=changed'] });
    expect(readFileSync(join(dir, 'ssh-root', 'mark.txt'), 'utf8')).toBe('n1 was here\n');
    // ssh2 being seen proves the recorder sees the packages a run loads.
    expect(heavy(r)).toEqual(['ssh2']);
    // Of ssh2, what a client that runs commands uses: its server, key generator, SFTP and HTTP agents are
    // small stand-ins in the bundle (src/app/bundle-cli.ts), each a few hundred bytes instead of 10-112 KB.
    const unused = ['ssh2/lib/server.js', 'ssh2/lib/keygen.js', 'ssh2/lib/protocol/SFTP.js', 'ssh2/lib/http-agents.js'];
    const inBundle = (module: string) =>
      Object.values(BUNDLE.outputs).flatMap((o) => Object.entries(o.inputs).filter(([input]) => input.endsWith(`node_modules/${module}`)).map(([, i]) => i.bytesInOutput));
    expect(unused.map((m) => `${m}: ${inBundle(m).every((bytes) => bytes < 500) && inBundle(m).length > 0}`)).toEqual(unused.map((m) => `${m}: true`));
  });

  it('a step that connects to PostgreSQL loads pg', async () => {
    const r = await traced(['run', sqlPlaybook, '-i', sshInventory, '--output', 'json']);
    expect(r.exitCode).toBe(1);
    const result = jsonEvents(r.stdout).find((e) => e.type === 'step-result');
    expect(result).toMatchObject({ step: 'ready', host: 'n1', status: 'failed' });
    expect(heavy(r)).toEqual(['ssh2', 'pg']);
    // pg asks on load whether it runs on Cloudflare Workers; on node 20 the question loaded undici (src/app/bundle-cli.ts).
    expect([...r.files].filter((f) => f.startsWith('node-deps:'))).not.toContain('node-deps:internal/deps/undici/undici');
  });

  it('a local run loads none of them: ssh2 only for SSH hosts, node:child_process instead of execa', async () => {
    const r = await traced(['run', playbook, '-i', localInventory, '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(resultsByHost(jsonEvents(r.stdout))).toEqual({ here: ['dir=changed', 'mark=changed'] });
    expect(readFileSync(join(dir, 'local-root', 'mark.txt'), 'utf8')).toBe('here was here\n');
    expect(heavy(r)).toEqual([]);
    // The template step needs handlebars, and yaml reads the files: the recorder sees what a local run loads.
    expect(r.packages.has('handlebars')).toBe(true);
    expect(r.packages.has('yaml')).toBe(true);
    // Each from its one file beside the bundle's chunks (core/libraries.ts), the template (not shipped, so
    // compiled here) from the whole of Handlebars: not one of their files from node_modules, nor the
    // source-map package Handlebars' code generator would require.
    const bundleFile = (name: string) => pathToFileURL(join(process.cwd(), 'dist', 'bundle', name)).href;
    expect(['yaml.cjs', 'handlebars-runtime.cjs', 'handlebars.cjs'].filter((f) => r.files.has(bundleFile(f)))).toEqual(['yaml.cjs', 'handlebars-runtime.cjs', 'handlebars.cjs']);
    expect([...r.files].filter((f) => /\/node_modules\/(yaml|handlebars|source-map)\//.test(f))).toEqual([]);
  });

  it('a local one-step run opens the bundle, not dist/ module by module, and only the packages it uses', async () => {
    // A state directory of its own: the first run finds its files in no parse cache (load/parse-cache.ts).
    const stateDir = join(dir, 'state-one-step');
    const r = await traced(['run', commandPlaybook, '-i', localInventory, '--output', 'json'], { stateDir });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(resultsByHost(jsonEvents(r.stdout))).toEqual({ here: ['one=changed'] });
    // The processes the run started: the step's command and the helper that reads the facts as the
    // PGDATA owner (with the descriptors of the helpers it may fork: transports/exec-server.ts); no git
    // (the playbook is in no repository), no shell for the host lock (a local host's lock is this
    // process's file calls), nothing at the end.
    expect(r.processes).toEqual(['runuser -u postgres -- perl -e  4,5 6,7 8,9', 'true']);
    // What the bin runs: the bundle's entry, and of pgplay's own files only the bundle's and the generated validators.
    expect(r.files.has(pathToFileURL(CLI).href)).toBe(true);
    // No module of the bundle initializes a define first (an object `define` makes esbuild add a module that
    // every module calls: ~8 ms more before this run's first command; core/libraries.ts takes a string).
    const bundleDir = join(process.cwd(), 'dist', 'bundle');
    const withDefineInit = readdirSync(bundleDir).filter((f) => f.endsWith('.js') && readFileSync(join(bundleDir, f), 'utf8').includes('init_define_'));
    expect(withDefineInit).toEqual([]);
    // The bundle's files are CommonJS, each require()d (src/app/bundle-cli.ts: node 20's ESM loader costs
    // ~0.4 ms more per file): only the entry went through the ESM loader, which --import gives the main module.
    const bundleUrl = pathToFileURL(bundleDir).href + '/';
    expect(r.esm.filter((url) => url.startsWith(bundleUrl)).map((url) => url.slice(bundleUrl.length))).toEqual(['main.js']);
    expect([...r.files].filter((url) => url.startsWith(bundleUrl)).length).toBeGreaterThan(10);
    const dist = pathToFileURL(join(process.cwd(), 'dist')).href + '/';
    expect([...r.files].filter((f) => f.startsWith(dist) && !/^(bundle|validators)\//.test(f.slice(dist.length)))).toEqual([]);
    // yaml reads the files, ajv's runtime helpers serve the generated validators; no transport, client
    // or renderer the run does not use (ssh2, execa, pg, listr2), and no Handlebars: the step renders no
    // `{{` (src/render/index.ts loads the runtime on the first one).
    expect([...r.packages].sort()).toEqual(['ajv', 'yaml']);
    // Of the actions, the registry and the one the playbook uses, with its helpers.
    expect([...r.modules].filter((m) => m.startsWith('actions/')).sort()).toEqual(['actions/command-readers.js', 'actions/command.js', 'actions/registry.js', 'actions/shell-export.js']);
    // The playbook declares no report: of the report modules, the output's and the dispatcher that finds that
    // (report/run-reports.ts), not the drill, restore and rejoin reports; and the evidence seal.
    expect([...r.modules].filter((m) => m.startsWith('report/') || m.startsWith('evidence/')).sort()).toEqual([
      'evidence/manifest.js',
      'report/format.js',
      'report/index.js',
      'report/json.js',
      'report/plain.js',
      'report/run-reports.js',
    ]);

    // The same files again: their data and schema verdicts come from the parse cache, so the YAML library
    // and the document validators (inventory, playbook shell, the action's part) are not loaded; the step
    // still runs. What is left of ajv serves the command's input validator, which the pre-flight render
    // loads for the rendered input (after the run's first command).
    const validators = (t: Traced) => [...t.files].flatMap((f) => (f.startsWith(`${dist}validators/`) ? [f.slice(dist.length).replace(/-[0-9a-f]+\.cjs$/, '')] : [])).sort();
    expect(validators(r)).toEqual(['validators/document', 'validators/document', 'validators/document', 'validators/formats.cjs', 'validators/input']);
    const again = await traced(['run', commandPlaybook, '-i', localInventory, '--output', 'json'], { stateDir });
    expect(again.stderr).toBe('');
    expect(again.exitCode).toBe(0);
    expect(resultsByHost(jsonEvents(again.stdout))).toEqual({ here: ['one=changed'] });
    expect([...again.packages].sort()).toEqual(['ajv']);
    // The run's first command (the PGDATA owner's command helper) starts once the inventory is read, before
    // the run imports the playbook's loaders, the expression language and the engine (app/run-playbook.ts):
    // those load while the helper starts.
    const firstCommand = again.sequence.findIndex((l) => l.startsWith('process:'));
    const loadedAt = (module: string) => again.sequence.findIndex((l) => l.endsWith(`/dist/${module}`));
    expect(firstCommand).toBeGreaterThan(0);
    expect(['cli/commands/run.js', 'load/inventory.js', 'app/early-connect.js'].filter((m) => !(loadedAt(m) >= 0 && loadedAt(m) < firstCommand))).toEqual([]);
    expect(['load/playbook.js', 'schema/validate.js', 'expr/parse.js', 'engine/run.js', 'engine/step.js', 'app/run-from-inventory.js'].filter((m) => !(loadedAt(m) > firstCommand))).toEqual([]);
    // Nor what only comes later or elsewhere: the identity script (the facts and the guards use it), plan's shell export.
    expect(['postgres/identity.js', 'engine/shell-export.js'].filter((m) => loadedAt(m) >= 0 && loadedAt(m) < firstCommand)).toEqual([]);
    expect(validators(again)).toEqual(['validators/input']);
    expect([...again.modules].filter((m) => m.startsWith('actions/')).sort()).toEqual(['actions/command-readers.js', 'actions/command.js', 'actions/registry.js', 'actions/shell-export.js']);
  });

  it('a run imports the actions its playbook uses, not the others and their helpers', async () => {
    const r = await traced(['run', playbook, '-i', localInventory, '--output', 'json']);
    expect(r.exitCode).toBe(0);
    // Changed on a first run, ok after the run above: either way both steps ran their action.
    expect(resultsByHost(jsonEvents(r.stdout)).here?.map((x) => x.replace(/=changed$/, '=ok'))).toEqual(['dir=ok', 'mark=ok']);
    // The two actions the playbook uses are seen: the recorder sees pgplay's own modules.
    expect(['actions/file.js', 'actions/template.js'].filter((m) => r.modules.has(m))).toEqual(['actions/file.js', 'actions/template.js']);
    const unused = [...r.modules].filter((m) => /^(actions\/(pgbackrest|barman|dump|restore-dump|postgres|basebackup|pitr-target|sql|wait)\b|barman\/|postgres\/(backup-set|pgbackrest-info|table-counts|data-checks))/.test(m));
    expect(unused).toEqual([]);
  });

  it('a terminal loads listr2', async () => {
    const r = await traced(['run', playbook, '-i', localInventory], { terminal: true });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('RECAP');
    expect(r.packages.has('listr2')).toBe(true);
    expect(r.packages.has('pg')).toBe(false);
  });
});

describe('the files a run loads', () => {
  it('are ASCII: V8 holds a file with one other character as a two-byte string, slower to read, hash and compile', () => {
    const dirs = ['dist/bundle', 'dist/validators', 'dist/precompiled'];
    const files = dirs.flatMap((dir) => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && /\.c?js$/.test(e.name)).map((e) => join(e.parentPath, e.name)));
    expect(files.length).toBeGreaterThan(100);
    const beyondAscii = files.filter((file) => /[^\x00-\x7f]/.test(readFileSync(file, 'utf8')));
    expect(beyondAscii).toEqual([]);
  });
});
