import { execa } from 'execa';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportEvidence, INDEX_FILE, SIGNATURE_NAMESPACE } from '../../src/evidence/export.js';
import { manifestFile, readManifest, sealRun } from '../../src/evidence/manifest.js';
import { verifyEvidence } from '../../src/evidence/verify.js';
import { journalFile } from '../../src/journal/paths.js';

let stateDir: string;
let clock = Date.parse('2026-12-01T10:00:00Z');

/** A finished run's journal (header, one step, run-end) and, for a drill, its stored reports. */
function finishedRun(n: number, drill = false): string {
  const runId = `20261201T10000${n}-${'a'.repeat(6)}${n}`;
  const started = new Date(clock).toISOString();
  clock += 60_000;
  const ended = new Date(clock).toISOString();
  const header = { type: 'journal', version: 1, runId, playbook: '/p.yml', playbookSha256: 'x', inventory: '/i.yml', cluster: 'main', params: {}, check: false, options: {}, git: null, resumeOf: null, pid: 1, hostname: 'elsewhere', user: 'root', started };
  const end = { type: 'run-end', runId, status: 'ok', exitCode: 0, recap: {}, durationMs: 1, time: ended };
  mkdirSync(join(stateDir, 'runs'), { recursive: true });
  writeFileSync(journalFile(stateDir, runId), [header, end].map((r) => JSON.stringify(r)).join('\n') + '\n');
  if (drill) {
    mkdirSync(join(stateDir, 'drills'), { recursive: true });
    writeFileSync(join(stateDir, 'drills', `${runId}.json`), JSON.stringify({ status: 'passed', rto: n }) + '\n');
    writeFileSync(join(stateDir, 'drills', `${runId}.txt`), `DRILL PASSED ${n}\n`);
  }
  return runId;
}

async function sealed(n: number, drill = false): Promise<string> {
  const id = finishedRun(n, drill);
  await sealRun(stateDir, id, () => new Date(clock + 1000));
  return id;
}

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'pgplay-evidence-'));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

describe('evidence: every run sealed into one hash chain', () => {
  it('a run is sealed with the SHA-256 of its journal and reports, linked to the manifest before it', async () => {
    const a = await sealed(1, true);
    const b = await sealed(2);
    const ma = readManifest(stateDir, a).manifest;
    const mb = readManifest(stateDir, b).manifest;
    expect(ma.previous).toBeNull();
    expect(ma.files.map((f) => f.path)).toEqual([`runs/${a}.jsonl`, `drills/${a}.json`, `drills/${a}.txt`]);
    expect(mb.previous?.run_id).toBe(a);
    const v = verifyEvidence(stateDir);
    expect(v).toMatchObject({ ok: true, chain: [a, b], problems: [] });
  });

  it('one changed byte of an old report is found and named', async () => {
    const a = await sealed(1, true);
    await sealed(2);
    await sealed(3);
    const report = join(stateDir, 'drills', `${a}.json`);
    const text = readFileSync(report, 'utf8');
    writeFileSync(report, text.replace('"rto":1', '"rto":2'));
    const v = verifyEvidence(stateDir);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([expect.stringContaining(`run ${a}: drills/${a}.json was changed`)]);
  });

  it('a removed record, a changed manifest and a removed manifest (with its run) are each found', async () => {
    const a = await sealed(1, true);
    const b = await sealed(2);
    const c = await sealed(3);
    await sealed(4);
    unlinkSync(join(stateDir, 'drills', `${a}.txt`));
    expect(verifyEvidence(stateDir).problems).toEqual([`run ${a}: drills/${a}.txt was removed`]);
    // Changing a manifest (e.g. to hide the removal) breaks the next manifest's link to it.
    const m = readManifest(stateDir, a).manifest;
    writeFileSync(manifestFile(stateDir, a), JSON.stringify({ ...m, files: m.files.filter((f) => !f.path.endsWith('.txt')) }));
    expect(verifyEvidence(stateDir).problems).toEqual([`the manifest of run ${a} was changed after run ${b} sealed it`]);
    // Removing a run from the middle with its manifest breaks the link of the run after it.
    unlinkSync(manifestFile(stateDir, c));
    unlinkSync(journalFile(stateDir, c));
    expect(verifyEvidence(stateDir).problems).toContain(`run 20261201T100004-aaaaaa4's manifest links to run ${c}, whose manifest was removed`);
  });

  it('a finished run that ended before the last seal but has no manifest was removed from the chain', async () => {
    await sealed(1);
    const b = await sealed(2);
    await sealed(3);
    unlinkSync(manifestFile(stateDir, b));
    const v = verifyEvidence(stateDir);
    expect(v.ok).toBe(false);
    expect(v.problems).toContain(`run 20261201T100003-aaaaaa3's manifest links to run ${b}, whose manifest was removed`);
    expect(v.problems).toContain(`run ${b} ended at ${readFileSync(journalFile(stateDir, b), 'utf8').match(/"time":"([^"]+)"/)![1]}, before the last seal (${readManifest(stateDir, '20261201T100003-aaaaaa3').manifest.sealed}), but has no manifest: it was removed`);
  });

  it('runs older than the chain and runs not sealed yet are notes, not problems', async () => {
    finishedRun(1);
    await sealed(2);
    finishedRun(3);
    const v = verifyEvidence(stateDir);
    expect(v.ok).toBe(true);
    expect(v.notes.sort()).toEqual([expect.stringContaining('aaaaaa1 ended before the evidence chain began'), expect.stringContaining('aaaaaa3 has no manifest yet')]);
  });

  it('an export holds the records with their sums, signed by ssh-keygen -Y sign and accepted by -Y verify', async () => {
    const a = await sealed(1, true);
    const b = await sealed(2);
    const key = join(stateDir, 'signer');
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'dr-auditor', '-f', key]);
    const out = join(stateDir, 'export');
    const r = await exportEvidence({ stateDir, sinceMs: 90 * 86_400_000, dir: out, key, now: new Date(clock + 5000) });
    expect(r.runs).toEqual([a, b]);
    const index = JSON.parse(readFileSync(join(out, INDEX_FILE), 'utf8'));
    expect(index.files.map((f: { path: string }) => f.path)).toContain(`drills/${a}.json`);
    expect(index.chain_head.run_id).toBe(b);
    const allowed = join(stateDir, 'allowed_signers');
    writeFileSync(allowed, `dr-auditor ${readFileSync(`${key}.pub`, 'utf8')}`);
    const verify = (data: string) =>
      execa('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'dr-auditor', '-n', SIGNATURE_NAMESPACE, '-s', `${join(out, INDEX_FILE)}.sig`], { input: data, reject: false });
    const good = await verify(readFileSync(join(out, INDEX_FILE), 'utf8'));
    expect(good.exitCode, good.stderr).toBe(0);
    const bad = await verify(readFileSync(join(out, INDEX_FILE), 'utf8').replace(a, b));
    expect(bad.exitCode).not.toBe(0);
    // A second export never overwrites the first.
    await expect(exportEvidence({ stateDir, sinceMs: 1000, dir: out })).rejects.toThrow(/is not empty/);
  });

  it('evidence that does not verify is not exported', async () => {
    const a = await sealed(1);
    writeFileSync(journalFile(stateDir, a), 'changed\n');
    await expect(exportEvidence({ stateDir, sinceMs: 90 * 86_400_000, dir: join(stateDir, 'out') })).rejects.toThrow(/does not verify/);
  });
});
