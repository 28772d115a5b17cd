/**
 * Where the running server keeps its files, from the server itself: `config_file`, `hba_file` and
 * `data_directory`, asked at the inventory's socket directory and port (where pgplay's SQL steps
 * connect). Compared with what the inventory's layout says (PGDATA, config directory), a difference
 * is a contradiction: pgplay would write configuration the server never reads, or act on a PGDATA
 * that is not this server's.
 *
 * The script is a section appended to the facts script (one round trip); it prints `paths.*` lines,
 * each path also resolved through symlinks, so that /var/run and /run, or a symlinked PGDATA, compare equal.
 * When the facts' own psql session already asked PATHS_SQL (factsScript with `paths`: the inventory's
 * socket is the running server's), the section reads those rows (PP_READ, PP_ROWS) instead of
 * starting a second psql. Shell builtins only besides that psql: it runs in every full gathering.
 */
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/inventory.js';
import { shQuote } from '../transports/quote.js';

export const PATHS_SQL = ['config_file', 'hba_file', 'data_directory']
  .map((name) => `select 'paths.${name}=' || current_setting('${name}')`)
  .join(' union all ');

/** The script section for a host with a PGDATA (empty otherwise); run as the PGDATA owner. */
export function serverPathsScript(host: Host): string {
  if (host.pgdata === undefined) return '';
  const pg = host.postgres;
  const configDir = pg.configDir ?? host.pgdata;
  return `
PP_BINDIR=${shQuote(pg.bindir)}; PP_PORT=${shQuote(String(pg.port))}; PP_SOCK=${shQuote(pg.socketDir)}; PP_USER=${shQuote(pg.superuser)}
PP_PGDATA=${shQuote(host.pgdata)}; PP_CONFDIR=${shQuote(configDir)}
# A path with every symbolic link resolved, in PP_REAL: a directory itself, a file through its
# directory (as $(cd "$(dirname f)" && pwd -P)/$(basename f) would, without the three processes).
pp_real() {
  PP_REAL=
  if [ -d "$1" ]; then cd -P -- "$1" 2>/dev/null && PP_REAL=$PWD
  elif [ -e "$1" ]; then
    case $1 in */*) pp_dir=\${1%/*}; pp_dir=\${pp_dir:-/} ;; *) pp_dir=. ;; esac
    cd -P -- "$pp_dir" 2>/dev/null && [ -n "$PWD" ] && PP_REAL=$PWD/\${1##*/}
  fi
  cd / 2>/dev/null
}
pp_rows() {
  while IFS= read -r pp_line; do
    case $pp_line in paths.*) echo "$pp_line"; pp_real "\${pp_line#*=}"; echo "\${pp_line%%=*}_real=$PP_REAL" ;; esac
  done
}
pp_real "$PP_PGDATA"; echo "paths.inventory_pgdata_real=$PP_REAL"
pp_real "$PP_CONFDIR"; echo "paths.inventory_config_dir_real=$PP_REAL"
if [ "\${PP_READ:-}" = 1 ]; then
  pp_rows <<PGPLAY_PATHS
\${PP_ROWS:-}
PGPLAY_PATHS
else
  if [ -x "$PP_BINDIR/psql" ]; then PP_PSQL=$PP_BINDIR/psql; else PP_PSQL=$(command -v psql 2>/dev/null); fi
  if [ -n "$PP_PSQL" ] && [ -S "$PP_SOCK/.s.PGSQL.$PP_PORT" ]; then
    pp_out=$(PGCONNECT_TIMEOUT=10 "$PP_PSQL" -X -A -t -q -w -h "$PP_SOCK" -p "$PP_PORT" -U "$PP_USER" -d postgres -c ${shQuote(PATHS_SQL)} 2>/dev/null)
    pp_rows <<PGPLAY_PATHS
$pp_out
PGPLAY_PATHS
  fi
fi
echo 'paths.end=1'
`;
}

/** The server's paths and the contradictions with the inventory, from the facts output. */
export function parseServerPaths(stdout: string, host: Host): Pick<HostFacts, 'config_file' | 'hba_file' | 'data_directory' | 'layout_contradictions'> {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^paths\.([a-z_]+)=(.*)$/.exec(line);
    if (m && !kv.has(m[1]!)) kv.set(m[1]!, m[2]!);
  }
  const configFile = kv.get('config_file');
  const hbaFile = kv.get('hba_file');
  const dataDirectory = kv.get('data_directory');
  if (!kv.has('end') || host.pgdata === undefined || !configFile || !hbaFile || !dataDirectory) return {};
  const out = { config_file: configFile, hba_file: hbaFile, data_directory: dataDirectory };
  const contradictions = layoutContradictions(host, {
    ...out,
    dataDirectoryReal: kv.get('data_directory_real') || dataDirectory,
    configFileReal: kv.get('config_file_real') || configFile,
    hbaFileReal: kv.get('hba_file_real') || hbaFile,
    pgdataReal: kv.get('inventory_pgdata_real') || host.pgdata,
    configDirReal: kv.get('inventory_config_dir_real') || (host.postgres.configDir ?? host.pgdata),
  });
  return contradictions.length ? { ...out, layout_contradictions: contradictions } : out;
}

interface ServerPaths {
  config_file: string;
  hba_file: string;
  data_directory: string;
  dataDirectoryReal: string;
  configFileReal: string;
  hbaFileReal: string;
  pgdataReal: string;
  configDirReal: string;
}

function layoutContradictions(host: Host, p: ServerPaths): string[] {
  const pg = host.postgres;
  const layout = pg.layout ?? 'pgdata';
  const at = `the server at ${pg.socketDir} port ${pg.port}`;
  const out: string[] = [];
  const pgdataWrong = p.dataDirectoryReal !== p.pgdataReal;
  if (pgdataWrong) out.push(`${at} runs from data_directory ${p.data_directory}, but the inventory's pgdata is ${host.pgdata}`);
  // With layout pgdata the config directory is PGDATA: a wrong PGDATA already says it all.
  if (layout === 'pgdata' && pgdataWrong) return out;
  const configDir = pg.configDir ?? host.pgdata!;
  const layoutName = layout === 'debian' ? `layout debian (cluster ${pg.cluster ?? 'main'})` : 'layout pgdata';
  if (p.configFileReal !== `${p.configDirReal}/postgresql.conf`) {
    out.push(`${at} reads config_file ${p.config_file}, but with ${layoutName} pgplay writes ${configDir}/postgresql.conf`);
  }
  if (p.hbaFileReal !== `${p.configDirReal}/pg_hba.conf`) {
    out.push(`${at} reads hba_file ${p.hba_file}, but with ${layoutName} pgplay writes ${configDir}/pg_hba.conf`);
  }
  return out;
}
