/**
 * Restoring a `pg_dumpall --globals-only` file onto a server that already has roles: the statements to
 * run, so that roles the server lacks are created as dumped (password verifier included), roles it has
 * keep their password unless the caller asks for the dumped one, and nothing fails just because a role
 * or tablespace exists. Lines that are psql meta-commands are skipped. pg_dumpall writes one statement per line; a statement that spans lines (a
 * quoted value with a newline) is kept whole.
 */

export interface GlobalsPlan {
  statements: string[];
  /** Roles the file creates that the server lacks. */
  created: string[];
  /** Existing roles whose password the file would set, left as they are. */
  passwordsKept: string[];
  /** Existing roles whose password is set from the file (passwords: true). */
  passwordsSet: string[];
  /** Existing tablespaces not created again. */
  tablespacesSkipped: string[];
}

const IDENT = String.raw`("(?:[^"]|"")*"|[^\s;]+)`;
const CREATE_ROLE = new RegExp(String.raw`^CREATE ROLE ${IDENT}\s*;$`);
const ALTER_ROLE_WITH = new RegExp(String.raw`^ALTER ROLE ${IDENT} WITH `);
const CREATE_TABLESPACE = new RegExp(String.raw`^CREATE TABLESPACE ${IDENT} `);
const PASSWORD = /\s+PASSWORD\s+'(?:[^']|'')*'/;

export function unquoteIdent(s: string): string {
  return s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s;
}

/** The statements of the file: comment and blank lines dropped, lines joined until one ends with `;` outside quotes. */
export function globalsStatements(sql: string): string[] {
  const out: string[] = [];
  let current = '';
  let inQuote = false;
  for (const line of sql.split('\n')) {
    // psql meta-commands (\restrict / \unrestrict of recent pg_dumpall releases) are psql's, not SQL.
    if (!current && (line.trim() === '' || line.startsWith('--') || line.startsWith('\\'))) continue;
    current = current ? `${current}\n${line}` : line;
    for (const ch of line) if (ch === "'") inQuote = !inQuote;
    if (!inQuote && line.trimEnd().endsWith(';')) {
      out.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

export function planGlobals(sql: string, existingRoles: ReadonlySet<string>, existingTablespaces: ReadonlySet<string>, setPasswords: boolean): GlobalsPlan {
  const plan: GlobalsPlan = { statements: [], created: [], passwordsKept: [], passwordsSet: [], tablespacesSkipped: [] };
  for (const stmt of globalsStatements(sql)) {
    const create = CREATE_ROLE.exec(stmt);
    if (create) {
      const role = unquoteIdent(create[1]!);
      if (existingRoles.has(role)) continue;
      plan.created.push(role);
      plan.statements.push(stmt);
      continue;
    }
    const alter = ALTER_ROLE_WITH.exec(stmt);
    if (alter) {
      const role = unquoteIdent(alter[1]!);
      if (existingRoles.has(role) && PASSWORD.test(stmt)) {
        if (setPasswords) plan.passwordsSet.push(role);
        else {
          plan.passwordsKept.push(role);
          plan.statements.push(stmt.replace(PASSWORD, ''));
          continue;
        }
      }
      plan.statements.push(stmt);
      continue;
    }
    const ts = CREATE_TABLESPACE.exec(stmt);
    if (ts && existingTablespaces.has(unquoteIdent(ts[1]!))) {
      plan.tablespacesSkipped.push(unquoteIdent(ts[1]!));
      continue;
    }
    plan.statements.push(stmt);
  }
  return plan;
}

/** What a statement is, for an error message: never the statement itself (it may hold a password verifier). */
export function describeStatement(stmt: string): string {
  const m = /^(\w+(?:\s+\w+)?)\s+("(?:[^"]|"")*"|[^\s;]+)/.exec(stmt);
  return m ? `${m[1]} ${m[2]}` : stmt.split(/\s+/).slice(0, 2).join(' ');
}
