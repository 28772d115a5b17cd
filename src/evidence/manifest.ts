/**
 * Tamper-evident records: after each run, a manifest under <state>/evidence/ lists the run's records
 * (its journal and the reports stored for it) with their SHA-256 sums, and the SHA-256 of the manifest
 * sealed before it. Changing or removing any sealed record, or a manifest in the middle of the chain,
 * breaks a sum or a link that `pgplay evidence verify` checks. The newest manifest has nothing after it
 * to vouch for it: an exported, signed bundle (export.ts) is the anchor for that.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rmdir, stat, writeFile } from 'node:fs/promises';
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

async function describe(stateDir: string, file: string): Promise<SealedFile> {
  const data = await readFile(file);
  return { path: relative(stateDir, file), sha256: sha256(data), bytes: data.length };
}

/**
 * Seals a finished run. Runs of different clusters share a state directory and may end together, so
 * the chain is extended under a lock (a directory, created atomically) to keep it a single line.
 */
export async function sealRun(stateDir: string, runId: string, now: () => Date = () => new Date()): Promise<Manifest | undefined> {
  const files = recordsOf(stateDir, runId);
  if (files.length === 0) return undefined;
  const dir = evidenceDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lock = join(dir, '.sealing');
  await acquire(lock);
  try {
    const head = await readFile(headFile(stateDir), 'utf8').then((t) => t.trim(), () => '');
    const previousId = head && head !== runId && existsSync(manifestFile(stateDir, head)) ? head : undefined;
    if (head && !previousId && head !== runId) throw new Error(`the evidence chain's head ${head} has no manifest: run \`pgplay evidence verify\``);
    const previous = previousId ? { run_id: previousId, sha256: sha256(await readFile(manifestFile(stateDir, previousId))) } : null;
    const manifest: Manifest = {
      kind: MANIFEST_KIND,
      version: 1,
      run_id: runId,
      sealed: now().toISOString(),
      files: await Promise.all(files.map((f) => describe(stateDir, f))),
      previous,
    };
    const target = manifestFile(stateDir, runId);
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, target);
    await writeFile(`${headFile(stateDir)}.tmp`, `${runId}\n`, { mode: 0o600 });
    await rename(`${headFile(stateDir)}.tmp`, headFile(stateDir));
    return manifest;
  } finally {
    await rmdir(lock).catch(() => undefined);
  }
}

const LOCK_WAIT_MS = 30_000;
/** A lock older than this was left by a process that died while sealing (sealing takes milliseconds). */
const STALE_LOCK_MS = 60_000;

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lock);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (age > STALE_LOCK_MS) {
        await rmdir(lock).catch(() => undefined);
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
