import fc from 'fast-check';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYamlText, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { loadAllActions } from '../../src/actions/registry.js';
import { PgplayError, PgplayErrors } from '../../src/core/errors.js';
import { validateFiles } from '../../src/load/validate-files.js';
import type { Inventory } from '../../src/model/inventory.js';

const actions = await loadAllActions();

/**
 * Hostile input: thousands of mutated playbooks and inventories, grown from valid ones, go through
 * validation. Whatever the mutation, validation answers with positioned PgplayErrors (or accepts the
 * file): never another exception, never an error without a place in the file. A few hundred also go
 * through the real CLI, which must exit 0 or 2 with `file:line:col:` messages and no stack trace.
 */
const RUNS = 2000;
const CLI_FILES = 300;
const SEED = 20240501;

const RICH_PLAYBOOK = `name: rich
description: every common step key, so mutations reach them all
params:
  target: { type: string, enum: [latest, time, name], default: latest }
  rows: { type: integer, minimum: 1, maximum: 1000000, default: 10 }
  token: { type: string, secret: true, required: false }
vars: { greeting: hello, list: [1, 2, 3] }
steps:
  - id: probe
    name: Probe
    hosts: [primary, standby]
    when: facts.running
    command: { argv: [pg_isready, -q], changed_when: false, expect_rc: [0, 1] }
    register: ready
    retries: 3
    delay: 2s
    until: ready.rc == 0
    tags: [check]
  - id: conf
    hosts: primary
    become: postgres
    template: { src: postgresql.conf.hbs, dest: "{{host.pgdata}}/conf.d/pgplay.conf", mode: "0600" }
    notify: [reload]
    timeout: 30s
  - id: rows
    hosts: primary
    sql: { query: "SELECT count(*) AS n FROM pg_class WHERE relpages > $1", params: ["{{params.rows}}"] }
    register: counted
    ignore_errors: true
  - id: wait
    hosts: standby
    wait: { sql: "SELECT pg_is_in_recovery()", timeout: 1m, interval: 1s }
    check_mode: false
  - id: gate
    hosts: all
    confirm: "really?"
    assert: { that: ["counted.rows[0].n >= 0"], msg: counted }
handlers:
  reload: { hosts: primary, postgres: { state: reloaded } }
`;

const LOCAL_INVENTORY = `cluster: lab
postgres: { version: 16, bindir: /opt/pg/bin, port: 55432, settings: { work_mem: 8MB, max_connections: 50 }, hba: [{ type: host, database: all, user: all, address: 127.0.0.1/32, method: scram-sha-256 }] }
connection: { transport: local, become: postgres }
replication: { user: replicator, password: { file: ~/.pgplay/repl }, slots: false }
backup: { tool: basebackup, repoHost: db1, repoPath: /srv/backups, retention: { full: 1 } }
hosts:
  db1: { address: 127.0.0.1, role: primary, pgdata: /srv/db1 }
  db2: { address: 127.0.0.2, role: standby, upstream: db1, pgdata: /srv/db2, postgres: { port: 55433 } }
vars: { app: demo }
`;

/** Characters and tokens that mean something to YAML, plus whitespace YAML is picky about. */
const SYNTAX = [':', ': ', '{', '}', '[', ']', ',', '&', '*', '#', '?', '|', '>', '-', '- ', '!', '!!', '%', '@', '`', '"', "'", '\t', '\n', '\n  ', '\r\n', '---\n', '...\n', '<<: ', '\\', '\u0000', '\uFEFF'];

/** Values swapped in for whatever was there: wrong types, huge and odd numbers, unicode, YAML oddities. */
const VALUES = [
  '[]', '{}', 'null', '~', 'true', 'no', '-1', '0', '1e999', '-1e999', '.nan', '.inf', '0x1F', '0o777', '99999999999999999999999999',
  '9007199254740993', '1.7976931348623157e309', '3.14', '"12"', "''", '""', '"\\u0000"', '"\\x07"', '🐘 éléphant', 'ŝtrange ŧext',
  '\u202Eevil\u202C', 'zero\u200Bwidth', '!!binary aGVsbG8=', '!!str 5', '!custom x', '&anchor value', '*anchor', '*undefined_alias',
  '{ env: NOPE }', '{ file: /etc/shadow }', '[a, [b, [c]]]', '"{{params.nope}}"', '"{{#each}}"', '"{{host.pgdata"', '|\n  block\n  text',
  '>-\n  folded', `"${'x'.repeat(5000)}"`, '2024-01-01', '12:30:00', 'yes', 'off',
];

interface Mutation {
  kind: number;
  at: number;
  pick: number;
}

function deepValue(depth: number, flow: boolean): string {
  if (flow) return '['.repeat(depth) + ']'.repeat(depth);
  let out = '';
  for (let i = 0; i < depth; i++) out += `\n${'  '.repeat(i + 2)}k${i}:`;
  return out + ' leaf';
}

const BOMB = ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]', 'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]'].join('\n');

/** Every path to a value in a parsed document, for structural mutations. */
function paths(value: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const p = [...prefix, Array.isArray(value) ? Number(k) : k];
      out.push(p);
      paths(v, p, out);
    }
  }
  return out;
}

const STRUCT_VALUES: unknown[] = [null, 0, -1, 1e308, 2 ** 64, 'text', '', true, [], {}, [1, 'two', null], { nested: { deeper: [{}] } }, '🐘', 'a'.repeat(300)];

/** Delete a key or replace a value somewhere in the document, then write it back as YAML. */
function structural(text: string, m: Mutation): string {
  let data: unknown;
  try {
    data = parseYamlText(text, { logLevel: 'silent' });
  } catch {
    return text;
  }
  const all = paths(data);
  if (all.length === 0) return text;
  const path = all[m.pick % all.length]!;
  let parent = data as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (m.kind % 2 === 0) {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else parent[last] = STRUCT_VALUES[m.pick % STRUCT_VALUES.length];
  return stringify(data);
}

/** One mutation of the text. */
function mutate(text: string, m: Mutation): string {
  const pos = Math.floor(m.at * text.length);
  const lines = text.split('\n');
  const li = Math.floor(m.at * lines.length);
  switch (m.kind) {
    case 0:
      return text.slice(0, pos) + SYNTAX[m.pick % SYNTAX.length] + text.slice(pos);
    case 1:
      return text.slice(0, pos) + text.slice(pos + (m.pick % 20) + 1);
    case 2:
      return text.slice(0, pos);
    case 3: // duplicate a line: duplicate keys, duplicate steps
      lines.splice(li, 0, lines[li] ?? '');
      return lines.join('\n');
    case 4:
      lines.splice(li, 1);
      return lines.join('\n');
    case 5: // tabs for indentation
      lines[li] = (lines[li] ?? '').replace(/^ +/, '\t');
      return lines.join('\n');
    case 6:
      if (li + 1 < lines.length) [lines[li], lines[li + 1]] = [lines[li + 1]!, lines[li]!];
      return lines.join('\n');
    case 7: {
      // a value swapped for another type or an odd scalar
      const line = lines[li] ?? '';
      const colon = line.indexOf(': ');
      lines[li] = colon >= 0 ? line.slice(0, colon + 2) + VALUES[m.pick % VALUES.length] : line + VALUES[m.pick % VALUES.length];
      return lines.join('\n');
    }
    case 8: {
      const line = lines[li] ?? '';
      const colon = line.indexOf(':');
      const deep = deepValue(10 + (m.pick % 300), m.pick % 2 === 0);
      lines[li] = colon >= 0 ? line.slice(0, colon + 1) + ' ' + deep : line + deep;
      return lines.join('\n');
    }
    case 9:
      return m.pick % 2 === 0 ? `${text}\nbomb:\n${BOMB.replace(/^/gm, '  ')}\n` : `anchors: &top { x: 1 }\n${text}\nmerged: { <<: *top, y: 2 }\n`;
    case 10: // unicode in a key
      lines[li] = (lines[li] ?? '').replace(/(\w+):/, `$1\u00e9\u{1F418}:`);
      return lines.join('\n');
    default:
      return structural(text, m);
  }
}

const mutationArb = fc.record({ kind: fc.integer({ min: 0, max: 12 }), at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), pick: fc.nat() });
const caseArb = fc.record({ seed: fc.nat(), mutations: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) });

/** Every error names this file at a line and column that exist in it. */
function checkErrors(errors: PgplayError[], file: string, text: string): void {
  // Lines as the loader counts them: a line ends at \n (a stray \r is just a character in the line).
  const lines = text.split('\n');
  for (const e of errors) {
    expect(e).toBeInstanceOf(PgplayError);
    const where = `${e.code}: ${e.message} at ${e.position?.line}:${e.position?.col}\n--- input ---\n${JSON.stringify(text)}`;
    expect(e.position, `no position: ${where}`).toBeDefined();
    const { line, col, file: at } = e.position!;
    expect(at, where).toBe(file);
    expect(line, where).toBeGreaterThanOrEqual(1);
    expect(col, where).toBeGreaterThanOrEqual(1);
    expect(line, where).toBeLessThanOrEqual(lines.length);
    // Columns count UTF-16 units; one may point just past the last character (a value missing at the end).
    expect(col, where).toBeLessThanOrEqual(lines[line - 1]!.length + 1);
  }
}

async function validateOne(file: string, text: string, inventory?: Inventory): Promise<PgplayError[]> {
  await writeFile(file, text);
  try {
    return (await validateFiles([file], { actions, inventory })).errors;
  } catch (e) {
    // A thrown PgplayError(s) is acceptable as long as it is positioned; anything else is a crash.
    if (e instanceof PgplayErrors) return e.errors;
    if (e instanceof PgplayError) return [e];
    throw new Error(`validateFiles crashed on ${file}: ${(e as Error)?.stack ?? e}\n--- input ---\n${text}`);
  }
}

let dir: string;
let playbookSeeds: string[];
let inventorySeeds: string[];
let seedInventory: Inventory;
const cliSamples: Array<{ kind: 'playbook' | 'inventory'; text: string; valid: boolean }> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-fuzz-'));
  const designInventory = await readFile('test/fixtures/valid/inventory.yml', 'utf8');
  playbookSeeds = [
    await readFile('test/fixtures/valid/nightly-backup.yml', 'utf8'),
    await readFile('test/e2e/fixtures/foundation/playbook.yml', 'utf8'),
    RICH_PLAYBOOK,
  ];
  inventorySeeds = [designInventory, LOCAL_INVENTORY];
  seedInventory = parseYamlText(designInventory) as Inventory;
  // The seeds themselves are valid: mutations start from a file the validator accepts.
  for (const [i, text] of inventorySeeds.entries()) expect(await validateOne(join(dir, `seed-inv-${i}.yml`), text)).toEqual([]);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('fuzzing validation with mutated files', () => {
  for (const kind of ['playbook', 'inventory'] as const) {
    it(`${RUNS} mutated ${kind}s: only positioned PgplayErrors, never a crash`, async () => {
      let n = 0;
      let rejected = 0;
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ seed, mutations }) => {
          const seeds = kind === 'playbook' ? playbookSeeds : inventorySeeds;
          let text = seeds[seed % seeds.length]!;
          for (const m of mutations) text = mutate(text, m);
          const file = join(dir, `${kind}-${n++ % 50}.yml`);
          const errors = await validateOne(file, text, kind === 'playbook' ? seedInventory : undefined);
          checkErrors(errors, file, text);
          if (errors.length) rejected++;
          if (cliSamples.filter((s) => s.kind === kind).length < CLI_FILES / 2 && n % 6 === 0) {
            // The CLI validates a playbook without an inventory beside it: judge the sample the same way.
            const valid = kind === 'inventory' ? errors.length === 0 : (await validateOne(file, text)).length === 0;
            cliSamples.push({ kind, text, valid });
          }
        }),
        { numRuns: RUNS, seed: SEED + (kind === 'playbook' ? 0 : 1), endOnFailure: true },
      );
      // The mutations must actually hurt: most files are rejected, a few survive unchanged in meaning.
      expect(rejected).toBeGreaterThan(RUNS / 2);
      // A guard against a hang, not a time limit: 13-40 s alone here, but once 240 s within the whole
      // suite on this two-core machine (same seed, same inputs; the cause was not found).
    }, 600_000);
  }

  it(`${CLI_FILES} of them through the real CLI: exit 0 or 2, file:line:col: messages, no stack trace`, async () => {
    expect(cliSamples.length).toBeGreaterThanOrEqual(CLI_FILES - 2);
    // Fifteen files of one kind per invocation keeps process start-up from dominating; four at a time.
    type Sample = { file: string; kind: string; valid: boolean };
    const batches: Sample[][] = [];
    const ordered = [...cliSamples.filter((s) => s.kind === 'playbook'), ...cliSamples.filter((s) => s.kind === 'inventory')];
    for (let i = 0; i < ordered.length; i += 15) {
      const batch = ordered.slice(i, i + 15).map((s, j) => ({ file: join(dir, `cli-${i + j}-${s.kind}.yml`), kind: s.kind, valid: s.valid, text: s.text }));
      for (const b of batch) await writeFile(b.file, b.text);
      batches.push(batch);
    }
    const run = async (batch: Sample[]) => {
      const r = await runCli(['validate', ...batch.map((b) => b.file)]);
      const where = `validate ${batch.map((b) => b.file).join(' ')}\n${r.stderr}`;
      expect(r.exitCode, where).toBe(batch.every((b) => b.valid) ? 0 : 2);
      expect(r.stderr, where).not.toMatch(/internal error|^\s+at .*\(.*:\d+:\d+\)$|^\(node:\d+\)/m);
      for (const { file, valid } of batch) {
        const quoted = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        const mentioned = new RegExp(`^error: ${quoted}`, 'm').test(r.stderr);
        const positioned = new RegExp(`^error: ${quoted}:\\d+:\\d+(: |, (step|host) [^\\n]*?: )\\S`, 'm').test(r.stderr);
        if (valid) {
          expect(mentioned, `${file} is valid\n${where}`).toBe(false);
          if (r.exitCode === 0) expect(r.stdout).toContain(`ok  ${file} (`);
        } else {
          expect(positioned, `${file} has no positioned error\n${where}`).toBe(true);
          expect(r.stderr.split('\n').filter((l) => l.startsWith(`error: ${file}`) && !new RegExp(`^error: ${quoted}:\\d+:\\d+[:,]`).test(l)), where).toEqual([]);
        }
      }
    };
    for (let i = 0; i < batches.length; i += 4) await Promise.all(batches.slice(i, i + 4).map(run));
  }, 240_000);
});
