/**
 * Tamper-evident records: after each run, a manifest under <state>/evidence/ lists the run's records
 * (its journal and the reports stored for it) with their SHA-256 sums, and the SHA-256 of the manifest
 * sealed before it. Changing or removing any sealed record, or a manifest in the middle of the chain,
 * breaks a sum or a link that `pgplay evidence verify` checks. The newest manifest has nothing after it
 * to vouch for it: an exported, signed bundle (export.ts) is the anchor for that.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { sleep } from '../core/sleep.js';
import { journalFile, RUN_ID_PATTERN } from '../journal/paths.js';

export const MANIFEST_KIND = 'pgplay-evidence-manifest';

export interface SealedFile {
  /** Relative to the state directory. */
  path: string;
  sha256: string;
  bytes: number;
}

export interface Manifest {
  kind: typeof MANIFEST_KIND;
  version: 1;
  run_id: string;
  sealed: string;
  files: SealedFile[];
  /** The manifest sealed before this one; null for the first of the state directory. */
  previous: { run_id: string; sha256: string } | null;
}

export function evidenceDir(stateDir: string): string {
  return join(stateDir, 'evidence');
}

export function manifestFile(stateDir: string, runId: string): string {
  return join(evidenceDir(stateDir), `${runId}.manifest.json`);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The newest manifest's run id, kept for sealing (verify follows the links, it does not trust this file). */
export function headFile(stateDir: string): string {
  return join(evidenceDir(stateDir), 'HEAD');
}

/** Run ids of the sealed runs, by run id (chain order is the order of sealing: follow `previous`). */
export function sealedRunIds(stateDir: string): string[] {
  const dir = evidenceDir(stateDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^(.+)\.manifest\.json$/.exec(f)?.[1])
    .filter((id): id is string => id !== undefined && RUN_ID_PATTERN.test(id))
    .sort();
}

/** The records a run leaves in the state directory: its journal, then the drill and restore reports stored under its id. */
export function recordsOf(stateDir: string, runId: string): string[] {
  const files = [journalFile(stateDir, runId)];
  for (const kind of ['drills', 'restores']) {
    const dir = join(stateDir, kind);
    if (existsSync(dir)) for (const f of readdirSync(dir).sort()) if (f.startsWith(`${runId}.`)) files.push(join(dir, f));
  }
  return files.filter((f) => existsSync(f));
}

function describe(stateDir: string, file: string): SealedFile {
  const data = readFileSync(file);
  return { path: relative(stateDir, file), sha256: sha256(data), bytes: data.length };
}

/**
 * Seals a finished run. Runs of different clusters share a state directory and may end together, so
 * the chain is extended under a lock (a directory, created atomically) to keep it a single line. The
 * files are a few small ones, read and written as the run's last work: by synchronous calls, which
 * take none of the thread pool's round trips (about a dozen of them, each a turn of the event loop).
 */
export async function sealRun(stateDir: string, runId: string, now: () => Date = () => new Date()): Promise<Manifest | undefined> {
  const files = recordsOf(stateDir, runId);
  if (files.length === 0) return undefined;
  const dir = evidenceDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, '.sealing');
  await acquire(lock);
  try {
    const head = readHead(stateDir);
    const previousId = head && head !== runId && existsSync(manifestFile(stateDir, head)) ? head : undefined;
    if (head && !previousId && head !== runId) throw new Error(`the evidence chain's head ${head} has no manifest: run \`pgplay evidence verify\``);
    const previous = previousId ? { run_id: previousId, sha256: sha256(readFileSync(manifestFile(stateDir, previousId))) } : null;
    const manifest: Manifest = {
      kind: MANIFEST_KIND,
      version: 1,
      run_id: runId,
      sealed: now().toISOString(),
      files: files.map((f) => describe(stateDir, f)),
      previous,
    };
    const target = manifestFile(stateDir, runId);
    const tmp = `${target}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, target);
    writeFileSync(`${headFile(stateDir)}.tmp`, `${runId}\n`, { mode: 0o600 });
    renameSync(`${headFile(stateDir)}.tmp`, headFile(stateDir));
    return manifest;
  } finally {
    try {
      rmdirSync(lock);
    } catch {
      // Gone already: nothing to release.
    }
  }
}

/** The head's run id; empty when there is none yet (or it cannot be read, as the chain's first). */
function readHead(stateDir: string): string {
  try {
    return readFileSync(headFile(stateDir), 'utf8').trim();
  } catch {
    return '';
  }
}

const LOCK_WAIT_MS = 30_000;
/** A lock older than this was left by a process that died while sealing (sealing takes milliseconds). */
const STALE_LOCK_MS = 60_000;

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        // Released meanwhile: try again at once.
      }
      if (age > STALE_LOCK_MS) {
        try {
          rmdirSync(lock);
        } catch {
          // Another sealer removed it first.
        }
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another pgplay has been sealing evidence for ${LOCK_WAIT_MS / 1000} s (${lock})`);
      await sleep(20);
    }
  }
}

export function readManifest(stateDir: string, runId: string): { manifest: Manifest; raw: Buffer } {
  const raw = readFileSync(manifestFile(stateDir, runId));
  return { manifest: JSON.parse(raw.toString('utf8')) as Manifest, raw };
}

/** Seals a run after it ended; a failure to seal is said, and does not change the run's result. */
export async function sealEvidence(stateDir: string, runId: string, warn: (message: string) => void): Promise<void> {
  try {
    await sealRun(stateDir, runId);
  } catch (e) {
    warn(`the run's records were not sealed into the evidence chain: ${(e as Error).message}`);
  }
}
