/**
 * `pgplay evidence verify`: follows the chain of manifests from its newest end back to its first and
 * checks every link and every sealed record. A record changed or removed, a manifest changed, removed
 * from the middle, or left out of the chain, is a problem; a finished run that ended after the chain
 * began and before its last seal, with no manifest, is one too (its manifest was removed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listRuns } from '../journal/reader.js';
import { MANIFEST_KIND, sealedRunIds, sha256, manifestFile, type Manifest } from './manifest.js';

export interface Verification {
  ok: boolean;
  /** Sealed runs in chain order, oldest first. */
  chain: string[];
  problems: string[];
  /** Not problems: runs not sealed yet (still running, or killed), runs older than the chain. */
  notes: string[];
}

export function verifyEvidence(stateDir: string): Verification {
  const problems: string[] = [];
  const notes: string[] = [];
  const manifests = new Map<string, { manifest: Manifest; sha: string }>();
  for (const id of sealedRunIds(stateDir)) {
    const file = manifestFile(stateDir, id);
    try {
      const raw = readFileSync(file);
      const manifest = JSON.parse(raw.toString('utf8')) as Manifest;
      if (manifest.kind !== MANIFEST_KIND || manifest.run_id !== id || !Array.isArray(manifest.files)) throw new Error('not a pgplay evidence manifest of this run');
      manifests.set(id, { manifest, sha: sha256(raw) });
    } catch (e) {
      problems.push(`manifest ${file} is unreadable: ${(e as Error).message}`);
    }
  }

  // Each record still has the sum it was sealed with.
  for (const [id, { manifest }] of manifests) {
    for (const f of manifest.files) {
      const path = join(stateDir, f.path);
      if (!existsSync(path)) {
        problems.push(`run ${id}: ${f.path} was removed`);
        continue;
      }
      if (sha256(readFileSync(path)) !== f.sha256) problems.push(`run ${id}: ${f.path} was changed (its SHA-256 differs from the sealed ${f.sha256.slice(0, 16)}...)`);
    }
  }

  // The links: exactly one newest manifest, each link to an existing, unchanged manifest, back to the first.
  const referenced = new Set<string>();
  for (const { manifest } of manifests.values()) if (manifest.previous) referenced.add(manifest.previous.run_id);
  const heads = [...manifests.keys()].filter((id) => !referenced.has(id));
  const chain: string[] = [];
  // A link to a removed manifest leaves the manifests before it without a successor: that is reported
  // once, as the broken link, not again as a second newest end.
  const dangling = [...referenced].some((id) => !manifests.has(id));
  if (manifests.size > 0 && heads.length !== 1 && !dangling) {
    problems.push(`the chain has ${heads.length} newest ends (${heads.join(', ') || 'none: it loops'}): a manifest was removed or replaced`);
  }
  const head = heads.sort().at(-1);
  const seen = new Set<string>();
  for (let id = head; id !== undefined; ) {
    if (seen.has(id)) {
      problems.push(`the chain loops at run ${id}`);
      break;
    }
    seen.add(id);
    chain.unshift(id);
    const link = manifests.get(id)!.manifest.previous;
    if (!link) break;
    const prev = manifests.get(link.run_id);
    if (!prev) {
      problems.push(`run ${id}'s manifest links to run ${link.run_id}, whose manifest ${existsSync(manifestFile(stateDir, link.run_id)) ? 'is unreadable' : 'was removed'}`);
      break;
    }
    if (prev.sha !== link.sha256) problems.push(`the manifest of run ${link.run_id} was changed after run ${id} sealed it`);
    id = link.run_id;
  }
  for (const id of manifests.keys()) if (!seen.has(id) && heads.length === 1 && !dangling) problems.push(`run ${id}'s manifest is not in the chain`);

  // Finished runs without a manifest.
  const first = [...manifests.values()].map((m) => m.manifest.sealed).sort()[0];
  const last = head ? manifests.get(head)!.manifest.sealed : undefined;
  const { runs } = listRuns(stateDir);
  for (const run of runs) {
    const id = run.header.runId;
    if (manifests.has(id)) continue;
    const ended = run.end?.time;
    if (!ended) notes.push(`run ${id} has no manifest: it has not ended (running, or killed)`);
    else if (!first || ended < first) notes.push(`run ${id} ended before the evidence chain began`);
    else if (last && ended < last) problems.push(`run ${id} ended at ${ended}, before the last seal (${last}), but has no manifest: it was removed`);
    else notes.push(`run ${id} has no manifest yet`);
  }
  return { ok: problems.length === 0, chain, problems, notes };
}
