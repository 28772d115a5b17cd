/**
 * Does a data directory hold anything a user made? Read from the files, so that it works the same for a
 * running and a stopped cluster and needs no login: every object a user creates gets an OID (and a
 * relfilenode) from FirstNormalObjectId (16384) up, while initdb's objects (the template databases,
 * `postgres`, the catalogs) stay below it. So a freshly created cluster (initdb, Debian's
 * pg_createcluster, RHEL's postgresql-setup) has no `base/<oid>` and no `base/<db>/<relfilenode>` at or
 * above 16384, and no tablespace; a database, a table, an index or a sequence made later shows up there.
 *
 * It errs on the safe side: a catalog rewritten by VACUUM FULL also gets a new relfilenode and counts as
 * user data. What it cannot see: rows added to the catalogs themselves (roles, large objects in
 * pg_largeobject), which a rebuild of a freshly installed host is expected to discard.
 */

/** FirstNormalObjectId: the first OID handed out after initdb. */
export const FIRST_USER_OID = 16384;
/** Enough entries to name what is there; a real cluster may have millions of files. */
const SHOWN = 20;

export interface UserData {
  /** base/<oid> directories at or above 16384: databases a user created. */
  databases: string[];
  /** base/<db>/<relfilenode> at or above 16384 in the initdb databases: tables, indexes, sequences a user made there. */
  relations: string[];
  /** Entries of pg_tblspc: tablespaces. */
  tablespaces: string[];
}

/**
 * `sh -c SCRIPT pgplay-user-data PGDATA` prints `database base/N`, `relation base/D/N` and
 * `tablespace N` lines (at most SHOWN of each), or exits 2 when PGDATA cannot be entered.
 */
export function userDataArgv(pgdata: string): string[] {
  const script = [
    'cd -- "$1" || exit 2',
    `find base -mindepth 1 -maxdepth 1 -type d | awk -F/ '$2 ~ /^[0-9]+$/ && $2+0 >= ${FIRST_USER_OID} { print "database " $0 }' | head -n ${SHOWN}`,
    `find base -mindepth 2 -maxdepth 2 -type f | awk -F/ '$2 ~ /^[0-9]+$/ && $2+0 < ${FIRST_USER_OID} && $3 ~ /^[0-9]+$/ && $3+0 >= ${FIRST_USER_OID} { print "relation " $0 }' | head -n ${SHOWN}`,
    `[ ! -d pg_tblspc ] || ls -A pg_tblspc | head -n ${SHOWN} | sed 's/^/tablespace /'`,
  ].join('\n');
  return ['/bin/sh', '-c', script, 'pgplay-user-data', pgdata];
}

export function parseUserData(stdout: string): UserData {
  const out: UserData = { databases: [], relations: [], tablespaces: [] };
  for (const line of stdout.split('\n')) {
    const [kind, what] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)];
    if (kind === 'database') out.databases.push(what);
    else if (kind === 'relation') out.relations.push(what);
    else if (kind === 'tablespace') out.tablespaces.push(what);
  }
  return out;
}

export function holdsUserData(d: UserData): boolean {
  return d.databases.length + d.relations.length + d.tablespaces.length > 0;
}

/** "2 databases a user created (base/16384, base/16390), 1 relation ..." for messages. */
export function describeUserData(d: UserData): string {
  const part = (n: number, what: string, list: string[]) =>
    n === 0 ? [] : [`${n >= SHOWN ? `${SHOWN} or more` : n} ${what}${n === 1 ? '' : 's'} (${list.slice(0, 3).join(', ')}${n > 3 ? ', ...' : ''})`];
  return [
    ...part(d.databases.length, 'database made after initdb', d.databases),
    ...part(d.relations.length, 'table, index or sequence made after initdb', d.relations),
    ...part(d.tablespaces.length, 'tablespace', d.tablespaces.map((t) => `pg_tblspc/${t}`)),
  ].join(', ');
}
