import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/actions/diff.js';
import { tempDir } from './support/action-context.js';

let dir: { path: string; cleanup(): Promise<void> };
beforeAll(async () => {
  dir = await tempDir('diff');
});
afterAll(() => dir.cleanup());

/** Texts from a small alphabet of lines, so the two sides share many lines; sometimes without a final newline. */
const text = fc
  .tuple(fc.array(fc.constantFrom('a', 'b', 'c', 'port = 1', ''), { maxLength: 14 }), fc.boolean())
  .map(([lines, finalNewline]) => (lines.length === 0 ? '' : lines.join('\n') + (finalNewline ? '\n' : '')));

function changedLines(diff: string): number {
  return diff.split('\n').filter((l) => /^[-+](?![-+]{2} )/.test(l)).length;
}

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\nb\n', 'a\nb\n', { fromLabel: 'x', toLabel: 'y' })).toBe('');
  });

  it('matches GNU diff -u byte for byte on a typical config edit', () => {
    const old = Array.from({ length: 20 }, (_, i) => `setting_${i} = ${i}`).join('\n') + '\n';
    const changed = old.replace('setting_3 = 3', 'setting_3 = 33').replace('setting_15 = 15\n', '').concat('added = yes\n');
    const a = join(dir.path, 'gnu-a');
    const b = join(dir.path, 'gnu-b');
    writeFileSync(a, old);
    writeFileSync(b, changed);
    const gnu = spawnSync('diff', ['-u', '--label', 'old', '--label', 'new', a, b], { encoding: 'utf8' }).stdout;
    expect(unifiedDiff(old, changed, { fromLabel: 'old', toLabel: 'new' })).toBe(gnu);
  });

  it('marks a missing final newline like GNU diff', () => {
    expect(unifiedDiff('a\nb', 'a\nb\n', { fromLabel: 'o', toLabel: 'n' })).toBe(
      '--- o\n+++ n\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n',
    );
  });

  it('for random texts: patch(1) turns old into new, and the edit is as small as diff --minimal finds', () => {
    const a = join(dir.path, 'a');
    const b = join(dir.path, 'b');
    const p = join(dir.path, 'p');
    fc.assert(
      fc.property(text, text, (oldText, newText) => {
        writeFileSync(a, oldText);
        writeFileSync(b, newText);
        const ours = unifiedDiff(oldText, newText, { fromLabel: 'a', toLabel: 'b' });
        if (oldText === newText) return ours === '';
        writeFileSync(p, ours);
        execFileSync('patch', ['-s', '-o', join(dir.path, 'patched'), a, p]);
        const patched = readFileSync(join(dir.path, 'patched'), 'utf8');
        const gnu = spawnSync('diff', ['-u', '--minimal', a, b], { encoding: 'utf8' }).stdout;
        return patched === newText && changedLines(ours) === changedLines(gnu);
      }),
      { numRuns: 150, seed: 4242 },
    );
  });
});
