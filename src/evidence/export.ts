/**
 * `pgplay evidence export --since 90d DIR [--key FILE]`: the records of the runs sealed in the period,
 * their manifests, and an index (EVIDENCE.json) with the SHA-256 of every exported file and the chain's
 * newest manifest. With a key, the index is signed by `ssh-keygen -Y sign` (namespace pgplay-evidence),
 * which `ssh-keygen -Y verify` checks: the signature vouches for every file through the sums, and
 * anchors the newest manifest, which nothing in the state directory can vouch for.
 */
import { execa } from 'execa';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { PgplayError } from '../core/errors.js';
import { manifestFile, readManifest, sha256 } from './manifest.js';
import { verifyEvidence } from './verify.js';

export const SIGNATURE_NAMESPACE = 'pgplay-evidence';
export const INDEX_FILE = 'EVIDENCE.json';

export interface ExportResult {
  dir: string;
  runs: string[];
  files: number;
  index: string;
  signature?: string;
}

export async function exportEvidence(o: { stateDir: string; sinceMs: number; dir: string; key?: string; now?: Date }): Promise<ExportResult> {
  const now = o.now ?? new Date();
  if (existsSync(o.dir) && readdirSync(o.dir).length > 0) {
    throw new PgplayError({ code: 'USAGE', message: `${o.dir} is not empty`, expected: 'a new or empty directory (an export never overwrites records)' });
  }
  if (o.key !== undefined && !existsSync(o.key)) throw new PgplayError({ code: 'USAGE', message: `--key ${o.key} does not exist` });
  const verification = verifyEvidence(o.stateDir);
  if (!verification.ok) {
    throw new PgplayError({
      code: 'GUARD',
      message: `the evidence in ${o.stateDir} does not verify, nothing exported:\n  ${verification.problems.join('\n  ')}`,
      hint: 'run `pgplay evidence verify` and find out what changed the records before exporting them',
    });
  }
  const from = new Date(now.getTime() - o.sinceMs).toISOString();
  const runs = verification.chain.filter((id) => readManifest(o.stateDir, id).manifest.sealed >= from);
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const exported: Array<{ path: string; sha256: string }> = [];
  const copy = async (source: string) => {
    const rel = relative(o.stateDir, source);
    const target = join(o.dir, rel);
    await mkdir(dirname(target), { recursive: true });
    await copyFile(source, target);
    exported.push({ path: rel, sha256: sha256(await readFile(target)) });
  };
  for (const id of runs) {
    await copy(manifestFile(o.stateDir, id));
    for (const f of readManifest(o.stateDir, id).manifest.files) await copy(join(o.stateDir, f.path));
  }
  const head = verification.chain.at(-1);
  const index = {
    kind: 'pgplay-evidence-export',
    version: 1,
    exported: now.toISOString(),
    since: from,
    state_dir: o.stateDir,
    chain_head: head ? { run_id: head, manifest_sha256: sha256(await readFile(manifestFile(o.stateDir, head))) } : null,
    runs,
    files: exported,
  };
  const indexFile = join(o.dir, INDEX_FILE);
  await writeFile(indexFile, JSON.stringify(index, null, 2) + '\n', { mode: 0o600 });
  let signature: string | undefined;
  if (o.key !== undefined) {
    const signed = await execa('ssh-keygen', ['-Y', 'sign', '-f', o.key, '-n', SIGNATURE_NAMESPACE, indexFile], { reject: false, stdin: 'ignore' });
    if (signed.exitCode !== 0) {
      throw new PgplayError({ code: 'STEP_FAILED', message: `ssh-keygen -Y sign failed (${signed.exitCode}): ${signed.stderr.trim()}`, hint: 'the key must be an unencrypted private key ssh-keygen can read' });
    }
    signature = `${indexFile}.sig`;
  }
  return { dir: o.dir, runs, files: exported.length, index: indexFile, ...(signature ? { signature } : {}) };
}
