/**
 * One block of lines that pgplay owns inside a file that is otherwise the user's (like Ansible's
 * blockinfile): between a `# BEGIN <marker>` and a `# END <marker>` line. Only the block is ever
 * rewritten; every other line stays as it is, in its place.
 *
 * Pure text: the block action (src/actions/block.ts) reads and writes the file around it.
 */

/** Where a block goes the first time, when the file has none. */
export type BlockPosition = 'first-entry' | 'top' | 'bottom';

export interface BlockOptions {
  marker: string;
  position: BlockPosition;
  /**
   * A file whose first line matches was written whole by an older pgplay: it is converted to the block
   * form. That header line goes, and so does every line that the new block holds (pgplay's own rules,
   * now inside the block) and pgplay's old section markers; every other line is kept below the block.
   */
  legacyFirstLine?: RegExp;
}

export interface BlockResult {
  text: string;
  /** What was done to the file: the block was already right, replaced, inserted, or the file converted. */
  action: 'unchanged' | 'replaced' | 'inserted' | 'converted';
}

export class BlockError extends Error {}

export function beginLine(marker: string): string {
  return `# BEGIN ${marker}`;
}

export function endLine(marker: string): string {
  return `# END ${marker}`;
}

/** The block's lines, markers included; content lines keep their text, a trailing newline is implied. */
export function blockLines(content: string, marker: string): string[] {
  const body = content.replace(/\n+$/, '');
  return [beginLine(marker), ...(body === '' ? [] : body.split('\n')), endLine(marker)];
}

/** Where the current block is: [begin, end] line indexes (inclusive), or null when the file has none. */
export function findBlock(lines: string[], marker: string): [number, number] | null {
  const begin = beginLine(marker);
  const end = endLine(marker);
  const begins = indexesOf(lines, begin);
  const ends = indexesOf(lines, end);
  if (begins.length === 0 && ends.length === 0) return null;
  if (begins.length !== 1 || ends.length !== 1 || ends[0]! < begins[0]!) {
    // Guessing which lines are ours could delete the user's: a human must look.
    throw new BlockError(
      `the file has ${begins.length} "${begin}" and ${ends.length} "${end}" line(s)` +
        (begins.length === 1 && ends.length === 1 ? ' in the wrong order' : '') +
        ': expected exactly one of each, BEGIN first. Fix the markers by hand (keep the lines you want outside them).',
    );
  }
  return [begins[0]!, ends[0]!];
}

/** The file's text with the block in place. `current` null: a new file holding only the block. */
export function placeBlock(current: string | null, content: string, options: BlockOptions): BlockResult {
  const block = blockLines(content, options.marker);
  if (current === null || current === '') return { text: block.join('\n') + '\n', action: 'inserted' };
  const lines = splitLines(current);
  const found = findBlock(lines, options.marker);
  if (found) {
    const [b, e] = found;
    const next = [...lines.slice(0, b), ...block, ...lines.slice(e + 1)];
    const text = joinLines(next, current);
    return { text, action: text === current ? 'unchanged' : 'replaced' };
  }
  if (options.legacyFirstLine && lines.length > 0 && options.legacyFirstLine.test(lines[0]!)) {
    const kept = legacyRemainder(lines.slice(1), block);
    return { text: joinLines([...block, ...(kept.length ? ['', ...kept] : [])], current), action: 'converted' };
  }
  const at = insertionIndex(lines, options.position);
  const before = lines.slice(0, at);
  const after = lines.slice(at);
  // A blank line keeps the block apart from the user's lines on either side.
  const next = [
    ...before,
    ...(before.length && before[before.length - 1]!.trim() !== '' ? [''] : []),
    ...block,
    ...(after.length && after[0]!.trim() !== '' ? [''] : []),
    ...after,
  ];
  return { text: joinLines(next, current), action: 'inserted' };
}

/**
 * first-entry: before the first line that is neither blank nor a comment (the first rule of a
 * pg_hba.conf, where first match wins), and before the comment lines directly above it that belong to
 * it (Debian's "DO NOT DISABLE!" note stays with its rule). No entry at all: at the bottom.
 */
function insertionIndex(lines: string[], position: BlockPosition): number {
  if (position === 'top') return 0;
  const bottom = lines.length;
  if (position === 'bottom') return bottom;
  const first = lines.findIndex((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  if (first < 0) return bottom;
  let at = first;
  while (at > 0 && lines[at - 1]!.trim().startsWith('#')) at--;
  // A comment paragraph that starts the file is the file's header, not the rule's note.
  return at === 0 ? first : at;
}

function legacyRemainder(rest: string[], block: string[]): string[] {
  const ours = new Set(block.map(normalize).filter((l) => l !== ''));
  const kept = rest.filter((l) => !ours.has(normalize(l)) && !/^#\s*(BEGIN|END) pgplay\b/.test(l.trim()));
  // Squeeze the blank lines the removed lines leave behind.
  const out: string[] = [];
  for (const l of kept) if (!(l.trim() === '' && (out.length === 0 || out[out.length - 1]!.trim() === ''))) out.push(l);
  while (out.length && out[out.length - 1]!.trim() === '') out.pop();
  return out;
}

function normalize(line: string): string {
  return line.trim().replace(/\s+/g, ' ');
}

function indexesOf(lines: string[], wanted: string): number[] {
  const out: number[] = [];
  lines.forEach((l, i) => {
    if (l.trimEnd() === wanted) out.push(i);
  });
  return out;
}

/** Lines without the final newline's empty tail, so that joining gives the same text back. */
function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Joins with \n and keeps a final newline when the file had one (or was empty). */
function joinLines(lines: string[], original: string): string {
  const trailing = original === '' || original.endsWith('\n');
  return lines.join('\n') + (trailing && lines.length ? '\n' : '');
}
