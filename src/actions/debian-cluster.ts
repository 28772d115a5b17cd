/**
 * debian_cluster: the configuration directory a Debian (postgresql-common) cluster needs, for a host
 * whose PGDATA was restored or copied from a backup (issue 11 item 2). Only missing files are written;
 * an existing file is never replaced, and one that names another data directory is refused.
 *
 * Why not Debian's own pg_createcluster on the existing data directory: it integrates a data directory
 * by MOVING the postgresql.conf, pg_hba.conf and pg_ident.conf found in PGDATA to /etc, and a backup of
 * a Debian primary has none there (they live in /etc on the primary), so it fails; and it refuses any
 * host where /etc/postgresql/<v>/<cluster> already holds a postgresql.conf or pg_hba.conf, which is
 * exactly the host whose user files must be kept. So pgplay writes what pg_createcluster would have,
 * file by file, and only where a file is missing: pg_hba.conf and pg_ident.conf are the upstream's
 * (`hba_from`), so that a standby that becomes the primary lets the same clients in.
 */
import { PgplayError } from '../core/errors.js';
import type { Host } from '../model/inventory.js';
import {
  DEBIAN_CLUSTER_FILES,
  DEBIAN_ENVIRONMENT,
  DEBIAN_PG_CTL_CONF,
  DEBIAN_PG_HBA,
  DEBIAN_PG_IDENT,
  DEBIAN_START_CONF,
  dataDirectoryOf,
  debianPostgresqlConf,
  type DebianClusterFile,
} from '../postgres/debian-cluster-files.js';
import { commandFailed, requirePgdata, transportOf } from '../postgres/owner.js';
import { word, writeFileLines } from './shell-export.js';
import type { Action, ActionContext } from './types.js';

export interface DebianClusterInput {
  /** Inventory host whose pg_hba.conf and pg_ident.conf a missing one is copied from (the upstream). */
  hba_from?: string;
}

const MODES: Record<DebianClusterFile, number> = {
  'postgresql.conf': 0o644,
  'pg_hba.conf': 0o640,
  'pg_ident.conf': 0o640,
  'start.conf': 0o644,
  'pg_ctl.conf': 0o644,
  environment: 0o644,
};

export const debianClusterAction: Action<DebianClusterInput> = {
  name: 'debian_cluster',
  // Configuration files under /etc/postgresql: no fact describes them.
  changes: [],
  summary:
    'Layout debian: writes the files of /etc/postgresql/<version>/<cluster> that are missing (postgresql.conf with data_directory, ' +
    "hba_file, ident_file and include_dir 'conf.d'; pg_hba.conf and pg_ident.conf; start.conf, pg_ctl.conf, environment) so that " +
    'pg_lsclusters and pg_ctlcluster know a cluster restored from a backup. Never replaces an existing file.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      hba_from: {
        type: 'string',
        minLength: 1,
        description: "Inventory host (the upstream) whose pg_hba.conf and pg_ident.conf are copied when this host has none; else pg_createcluster's defaults.",
      },
    },
  },

  async check(ctx, input) {
    const plan = await examine(ctx, input);
    if (plan.missing.length === 0) return { changed: false, msg: `${plan.configDir} holds every file of cluster ${plan.name}` };
    return { changed: true, msg: `would write ${plan.missing.join(', ')} in ${plan.configDir}` };
  },

  // The files missing at plan time, each written only if still missing when the script runs.
  async exportShell(ctx, input) {
    const plan = await examine(ctx, input);
    const owner = ctx.host.postgres.osUser;
    const commands = [`install -d -o ${word(owner)} -g "$(id -gn ${word(owner)})" -m 0755 ${word(plan.configDir)} ${word(`${plan.configDir}/conf.d`)}`];
    for (const file of plan.missing) {
      const path = `${plan.configDir}/${file}`;
      const content = await contentOf(ctx, input, file, plan);
      commands.push(`if [ ! -e ${word(path)} ]; then`, ...writeFileLines(path, content.text, { mode: MODES[file], owner }), 'fi');
    }
    return { runAlways: true, comments: plan.missing.length ? [`missing at plan time: ${plan.missing.join(', ')}`] : [`${plan.configDir} holds every file`], commands };
  },

  async apply(ctx, input) {
    const plan = await examine(ctx, input);
    if (plan.missing.length === 0) return { changed: false };
    const host = ctx.host;
    const owner = host.postgres.osUser;
    const mk = await ctx.transport.exec(
      ['/bin/sh', '-c', 'u=$1; shift; install -d -o "$u" -g "$(id -gn "$u")" -m 0755 "$@"', 'pgplay-debian-dirs', owner, plan.configDir, `${plan.configDir}/conf.d`],
      { become: 'root', signal: ctx.signal, timeoutMs: 30_000 },
    );
    if (mk.exitCode !== 0) throw commandFailed(`cannot create ${plan.configDir} on ${host.name}`, mk);
    const written: string[] = [];
    for (const file of plan.missing) {
      const content = await contentOf(ctx, input, file, plan);
      await ctx.transport.writeFile(`${plan.configDir}/${file}`, content.text, { mode: MODES[file], owner, become: 'root', keepPrevious: false });
      written.push(content.from ? `${file} (from ${content.from})` : file);
    }
    return { changed: true, msg: `wrote ${written.join(', ')} in ${plan.configDir}`, data: { written: plan.missing, config_dir: plan.configDir } };
  },
};

export default debianClusterAction;

interface Plan {
  configDir: string;
  pgdata: string;
  name: string;
  missing: DebianClusterFile[];
}

async function examine(ctx: ActionContext, input: DebianClusterInput): Promise<Plan> {
  const host = ctx.host;
  const pgdata = requirePgdata(host);
  if (host.postgres.layout !== 'debian' || !host.postgres.configDir) {
    throw new PgplayError({
      code: 'SEMANTIC',
      message: `debian_cluster: ${host.name} uses layout ${host.postgres.layout ?? 'pgdata'}, whose configuration lives in PGDATA`,
      expected: 'debian_cluster only on hosts with postgres.layout: debian (when: host.postgres.layout == \'debian\')',
    });
  }
  if (input.hba_from !== undefined && !ctx.hosts[input.hba_from]) {
    throw new PgplayError({ code: 'SEMANTIC', message: `debian_cluster: hba_from names no inventory host: ${input.hba_from}` });
  }
  const configDir = host.postgres.configDir;
  const name = `${host.postgres.version}/${host.postgres.cluster ?? 'main'}`;
  const missing: DebianClusterFile[] = [];
  for (const file of DEBIAN_CLUSTER_FILES) {
    const st = await ctx.transport.stat(`${configDir}/${file}`, { become: 'root' });
    if (!st.exists) missing.push(file);
  }
  if (!missing.includes('postgresql.conf')) {
    const conf = (await ctx.transport.readFile(`${configDir}/postgresql.conf`, { become: 'root' }))?.toString('utf8') ?? '';
    const dataDirectory = dataDirectoryOf(conf);
    if (dataDirectory !== pgdata) {
      throw new PgplayError({
        code: 'GUARD',
        message: `${configDir}/postgresql.conf on ${host.name} ${dataDirectory ? `runs cluster ${name} from ${dataDirectory}` : 'sets no data_directory'}, but the inventory's pgdata is ${pgdata}`,
        expected: `data_directory = '${pgdata}' in ${configDir}/postgresql.conf (pgplay does not rewrite your file)`,
        hint: `set data_directory in that file yourself, or give the host pgdata: ${dataDirectory ?? '<its data directory>'}`,
      });
    }
  }
  return { configDir, pgdata, name, missing };
}

async function contentOf(ctx: ActionContext, input: DebianClusterInput, file: DebianClusterFile, plan: Plan): Promise<{ text: string; from?: string }> {
  const host = ctx.host;
  switch (file) {
    case 'postgresql.conf':
      return {
        text: debianPostgresqlConf({
          version: host.postgres.version,
          cluster: host.postgres.cluster ?? 'main',
          pgdata: plan.pgdata,
          configDir: plan.configDir,
          port: host.postgres.port,
          socketDir: host.postgres.socketDir,
        }),
      };
    case 'pg_hba.conf':
    case 'pg_ident.conf': {
      const copied = input.hba_from ? await upstreamFile(ctx, ctx.hosts[input.hba_from]!, file) : undefined;
      if (copied !== undefined) return { text: copied, from: input.hba_from };
      return { text: file === 'pg_hba.conf' ? DEBIAN_PG_HBA : DEBIAN_PG_IDENT };
    }
    case 'start.conf':
      return { text: DEBIAN_START_CONF };
    case 'pg_ctl.conf':
      return { text: DEBIAN_PG_CTL_CONF };
    case 'environment':
      return { text: DEBIAN_ENVIRONMENT };
  }
}

/** The upstream's own pg_hba.conf or pg_ident.conf (in its config directory), when it can be read. */
async function upstreamFile(ctx: ActionContext, upstream: Host, file: string): Promise<string | undefined> {
  const dir = upstream.postgres.configDir ?? upstream.pgdata;
  if (!dir) return undefined;
  try {
    const data = await transportOf(ctx, upstream).readFile(`${dir}/${file}`, { become: upstream.postgres.osUser });
    return data?.toString('utf8');
  } catch (e) {
    ctx.log(`cannot read ${file} of ${upstream.name}: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}
