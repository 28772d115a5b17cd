/**
 * Where a host's pgbackrest.conf is, resolved once for every template, playbook and action.
 *
 * pgBackRest itself (2.45, src/config/parse.c) reads `--config` when given, else
 * /etc/pgbackrest/pgbackrest.conf, and only when that file is missing the older /etc/pgbackrest.conf
 * (the path Debian's package still ships). pgplay writes the current default: with it no command needs
 * `--config`, and once it exists pgBackRest never reads /etc/pgbackrest.conf again, so the procedures move
 * that file aside (kept as /etc/pgbackrest.conf.pgplay-prev) instead of leaving a second config that
 * disagrees with the one in force. The host var `pgbackrest_config` (else the inventory var) puts it
 * elsewhere; then every pgBackRest command pgplay writes for the host (archive_command, restore_command,
 * the action's argv, a peer's pg-host-config / repo1-host-config) names it with `--config=`.
 */
import type { Inventory } from '../model/inventory.js';

/** What a `pgbackrest_config` may be: it is written unquoted into archive_command and restore_command. */
export const PGBACKREST_CONFIG_PATH = /^\/[A-Za-z0-9_.+\/-]+$/;

export const PGBACKREST_DEFAULT_CONFIG = '/etc/pgbackrest/pgbackrest.conf';
/** pgBackRest's fallback when the default is missing, and what Debian's pgbackrest package installs. */
export const PGBACKREST_PACKAGE_CONFIG = '/etc/pgbackrest.conf';

/** `host.pgbackrest` in templates and expressions. */
export interface ResolvedPgbackrest {
  /** The pgbackrest.conf pgplay writes and every pgBackRest command on this host reads. */
  config: string;
  /** config is pgBackRest's own default: no `--config` is needed, and the package's file is moved aside. */
  configIsDefault: boolean;
  /** The directory of config. */
  configDir: string;
  /** `pgbackrest`, or `pgbackrest --config=<config>`: the start of archive_command and restore_command. */
  command: string;
}

export function resolvePgbackrest(hostVars: Record<string, unknown> | undefined, inventory: Pick<Inventory, 'vars'>): ResolvedPgbackrest {
  const fromVars = hostVars?.pgbackrest_config ?? inventory.vars?.pgbackrest_config;
  // Any other value is reported by the inventory checks (exit 2) before anything runs.
  const config = typeof fromVars === 'string' && PGBACKREST_CONFIG_PATH.test(fromVars) ? fromVars : PGBACKREST_DEFAULT_CONFIG;
  const configIsDefault = config === PGBACKREST_DEFAULT_CONFIG;
  return {
    config,
    configIsDefault,
    configDir: config.slice(0, config.lastIndexOf('/')) || '/',
    command: configIsDefault ? 'pgbackrest' : `pgbackrest --config=${config}`,
  };
}
