/**
 * Unified diff of two texts, line by line (Myers' O(ND) algorithm), in the format `diff -u` and git
 * print, so a DBA reads a plan the way they read any patch. No dependency: config files are small.
 */

export interface UnifiedDiffOptions {
  /** Label of the old side (the `---` line). */
  fromLabel: string;
  /** Label of the new side (the `+++` line). */
  toLabel: string;
  /** Unchanged lines shown around each change. */
  context?: number;
}

type Op = { kind: 'equal' | 'delete' | 'insert'; line: string };

/**
 * Returns '' when the texts are equal. A last line without a newline is marked with
 * `\ No newline at end of file` like GNU diff, because that difference matters to some parsers.
 */
export function unifiedDiff(oldText: string, newText: string, options: UnifiedDiffOptions): string {
  if (oldText === newText) return '';
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const ops = diffLines(a, b);
  const context = options.context ?? 3;
  const out = [`--- ${options.fromLabel}`, `+++ ${options.toLabel}`];
  for (const hunk of hunks(ops, context)) out.push(...hunk);
  return out.join('\n') + '\n';
}

/** Lines keep their terminator so that "a" and "a\n" differ, as they do on disk. */
function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n').map((l) => l + '\n');
  const last = lines.pop()!;
  if (last !== '\n') lines.push(last.slice(0, -1));
  return lines;
}

/** The shortest edit script from a to b. Common prefix and suffix are peeled off first: most edits are local. */
export function diffLines(a: string[], b: string[]): Op[] {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const middle = myers(a.slice(start, endA), b.slice(start, endB));
  return [
    ...a.slice(0, start).map((line) => ({ kind: 'equal' as const, line })),
    ...middle,
    ...a.slice(endA).map((line) => ({ kind: 'equal' as const, line })),
  ];
}

function myers(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((line) => ({ kind: 'insert', line }));
  if (m === 0) return a.map((line) => ({ kind: 'delete', line }));
  const max = n + m;
  const offset = max;
  let v: Int32Array = new Int32Array(2 * max + 2);
  const trace: Int32Array[] = [];
  let found = false;
  for (let d = 0; d <= max && !found; d++) {
    trace.push(v.slice());
    for (let k = -d; k <= d; k += 2) {
      let x: number;
      if (k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)) x = v[offset + k + 1]!;
      else x = v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  trace.push(v.slice());
  // Walk the trace backwards from (n, m), recording which diagonal each step came from.
  const ops: Op[] = [];
  let x = n;
  let y = m;
  for (let d = trace.length - 2; d >= 0; d--) {
    v = trace[d]!;
    const k = x - y;
    let prevK: number;
    if (k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!)) prevK = k + 1;
    else prevK = k - 1;
    const prevX = d === 0 ? 0 : v[offset + prevK]!;
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      ops.push({ kind: 'equal', line: a[x - 1]! });
      x--;
      y--;
    }
    if (d === 0) break;
    if (x === prevX) ops.push({ kind: 'insert', line: b[y - 1]! });
    else ops.push({ kind: 'delete', line: a[x - 1]! });
    x = prevX;
    y = prevY;
  }
  return ops.reverse();
}

function hunks(ops: Op[], context: number): string[][] {
  // Index ranges of changes, merged when the unchanged gap between them fits in two contexts.
  const changes: Array<[number, number]> = [];
  for (let i = 0; i < ops.length; i++) {
    if (ops[i]!.kind === 'equal') continue;
    let j = i;
    while (j + 1 < ops.length && ops[j + 1]!.kind !== 'equal') j++;
    const last = changes[changes.length - 1];
    if (last && i - last[1] - 1 <= 2 * context) last[1] = j;
    else changes.push([i, j]);
    i = j;
  }
  // Line numbers on each side before each op, for the @@ headers.
  const oldLine: number[] = [];
  const newLine: number[] = [];
  let o = 0;
  let nn = 0;
  for (const op of ops) {
    oldLine.push(o);
    newLine.push(nn);
    if (op.kind !== 'insert') o++;
    if (op.kind !== 'delete') nn++;
  }
  return changes.map(([first, last]) => {
    const from = Math.max(0, first - context);
    const to = Math.min(ops.length - 1, last + context);
    const body: string[] = [];
    let oldCount = 0;
    let newCount = 0;
    for (let i = from; i <= to; i++) {
      const op = ops[i]!;
      const sign = op.kind === 'equal' ? ' ' : op.kind === 'delete' ? '-' : '+';
      if (op.kind !== 'insert') oldCount++;
      if (op.kind !== 'delete') newCount++;
      if (op.line.endsWith('\n')) body.push(sign + op.line.slice(0, -1));
      else body.push(sign + op.line, '\\ No newline at end of file');
    }
    const oldStart = oldCount === 0 ? oldLine[from]! : oldLine[from]! + 1;
    const newStart = newCount === 0 ? newLine[from]! : newLine[from]! + 1;
    return [`@@ -${range(oldStart, oldCount)} +${range(newStart, newCount)} @@`, ...body];
  });
}

function range(start: number, count: number): string {
  return count === 1 ? `${start}` : `${start},${count}`;
}
