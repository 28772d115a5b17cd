/**
 * Tamper-evident records through the CLI: every `pgplay run` seals its journal into the chain, and
 * `pgplay evidence verify` finds a byte changed in an old run's journal; export signs what it copies.
 */
import { execa } from 'execa';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';

let dir: string;
let stateDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgplay-evidence-cli-'));
  stateDir = join(dir, 'state');
  await writeFile(join(dir, 'inventory.yml'), `cluster: t\npostgres: { version: 15 }\nconnection: { transport: local }\nhosts:\n  db1: { address: 127.0.0.1, role: primary, pgdata: ${dir}/pg }\n`);
  await writeFile(join(dir, 'note.yml'), `name: note\nsteps:\n  - id: note\n    hosts: db1\n    command: { argv: [echo, "{{params.word}}"], changed_when: false }\nparams:\n  word: { type: string, default: hello }\n`);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const pgplay = (args: string[]) => runCli([...args, '--state-dir', stateDir]);

describe('evidence through the CLI', () => {
  it('three runs are sealed into one chain; a changed byte in the first journal fails verify naming it', async () => {
    for (const word of ['one', 'two', 'three']) {
      const r = await pgplay(['run', join(dir, 'note.yml'), '-i', join(dir, 'inventory.yml'), '-p', `word=${word}`]);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const manifests = readdirSync(join(stateDir, 'evidence')).filter((f) => f.endsWith('.manifest.json')).sort();
    expect(manifests).toHaveLength(3);
    const ok = await pgplay(['evidence', 'verify']);
    expect(ok.exitCode, ok.stdout).toBe(0);
    expect(ok.stdout).toContain('evidence verified: 3 sealed runs in one unbroken chain');

    // The first run is found by what it did, not by its id: two runs started in the same second sort
    // by their ids' random suffixes.
    const ids = manifests.map((m) => m.replace('.manifest.json', ''));
    const first = ids.find((id) => readFileSync(join(stateDir, 'runs', `${id}.jsonl`), 'utf8').includes('"word":"one"'))!;
    expect(first).toBeDefined();
    const journal = join(stateDir, 'runs', `${first}.jsonl`);
    const text = readFileSync(journal, 'utf8');
    writeFileSync(journal, text.replace('"word":"one"', '"word":"oNe"'));
    const bad = await pgplay(['evidence', 'verify', '--output', 'json']);
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout).problems).toEqual([expect.stringContaining(`run ${first}: runs/${first}.jsonl was changed`)]);
    // An export refuses evidence that does not verify (exit 3) and writes nothing.
    const refused = await pgplay(['evidence', 'export', '--since', '1d', join(dir, 'out')]);
    expect(refused.exitCode).toBe(3);
    writeFileSync(journal, text);

    const key = join(dir, 'signer');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'auditor', '-f', key]);
    const exported = await pgplay(['evidence', 'export', '--since', '1d', join(dir, 'out'), '--key', key]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/exported 3 runs \(6 files\)/);
    writeFileSync(join(dir, 'allowed'), `auditor ${readFileSync(`${key}.pub`, 'utf8')}`);
    const verified = await execa('ssh-keygen', ['-Y', 'verify', '-f', join(dir, 'allowed'), '-I', 'auditor', '-n', 'pgplay-evidence', '-s', join(dir, 'out', 'EVIDENCE.json.sig')], {
      input: readFileSync(join(dir, 'out', 'EVIDENCE.json')),
      reject: false,
    });
    expect(verified.exitCode, verified.stderr).toBe(0);
  });
});
