import { PgplayError } from '../core/errors.js';
import { handlebarsCompiler } from './handlebars-lib.js';

const TOKEN_NAMES: Record<string, string> = {
  ID: 'a name',
  STRING: 'a string',
  NUMBER: 'a number',
  BOOLEAN: 'true or false',
  UNDEFINED: 'undefined',
  NULL: 'null',
  DATA: 'an @variable',
  CLOSE: '"}}"',
  OPEN_SEXPR: '"("',
  CLOSE_SEXPR: '")"',
  EQUALS: '"="',
  SEP: '"."',
  OPEN_BLOCK_PARAMS: '"as |name|"',
  CLOSE_UNESCAPED: '"}}}"',
  EOF: 'the end of the template',
};

export function where(name: string, line: number, column: number | undefined): string {
  return column === undefined ? `in template "${name}" at line ${line}` : `in template "${name}" at line ${line}, column ${column}`;
}

/** Handlebars' parse errors carry no position; re-run its parser with a hook that keeps jison's. */
function parseErrorPosition(text: string): { line: number; column?: number; found?: string; expected: string[] } | undefined {
  const parser = Object.create((handlebarsCompiler() as unknown as { Parser: object }).Parser) as { parse(s: string): unknown; parseError: unknown };
  let info: { line: number; column?: number; found?: string; expected: string[] } | undefined;
  parser.parseError = (message: string, hash: { text?: string; token?: string; line?: number; loc?: { last_line: number; last_column: number }; expected?: string[] }) => {
    const expected = [...new Set((hash.expected ?? []).map((t) => TOKEN_NAMES[t.replace(/'/g, '')]).filter((t): t is string => !!t))];
    if (hash.loc) {
      // jison reports the last good token; the offending one starts after it and any blanks.
      const lines = text.split('\n');
      let line = hash.loc.last_line;
      let col = hash.loc.last_column;
      while (line <= lines.length) {
        const current = lines[line - 1] ?? '';
        while (col < current.length && /\s/.test(current[col]!)) col++;
        if (col < current.length || line === lines.length) break;
        line++;
        col = 0;
      }
      const found = hash.token === 'EOF' ? TOKEN_NAMES.EOF : `"${(lines[line - 1] ?? '').slice(col, col + 12).split(/\s/)[0] || hash.text}"`;
      info = { line, column: col + 1, found, expected };
    } else {
      info = { line: (hash.line ?? 0) + 1, expected };
    }
    throw new Error(message);
  };
  try {
    parser.parse(text);
  } catch {
    /* the info was captured by the hook */
  }
  return info;
}

/** A parse or compile error, placed at the offending token where Handlebars lets us find it. */
export function syntaxError(text: string, name: string, e: Error & { lineNumber?: number; column?: number }): PgplayError {
  if (e.lineNumber !== undefined) {
    const what = e.message.replace(/ - \d+:\d+$/, '');
    return new PgplayError({ code: 'RENDER', message: `template syntax error ${where(name, e.lineNumber, (e.column ?? 0) + 1)}: ${what}` });
  }
  const pos = parseErrorPosition(text);
  if (!pos) return new PgplayError({ code: 'RENDER', message: `template syntax error in template "${name}": ${e.message}` });
  const expected = pos.expected.length ? pos.expected.join(', ') : undefined;
  const detail = expected ? `expected ${expected}${pos.found ? ` but found ${pos.found}` : ''}` : e.message.split('\n')[0]!;
  return new PgplayError({ code: 'RENDER', message: `template syntax error ${where(name, pos.line, pos.column)}: ${detail}`, expected });
}
